//! Differential test against tcpdump: for every filter of a generated set,
//! the packets of a generated capture file that pktio's filter selects
//! equal the ones `tcpdump -r corpus.pcap -w - FILTER` keeps.
//!
//! - The corpus (written with [`PcapWriter`]): the shared filter corpus
//!   (IPv4/IPv6, TCP/UDP/SCTP/ICMP/ICMPv6, ARP, VLAN, QinQ, fragments, IPv6
//!   extension headers, every prefix of each frame, random frames), plus
//!   RARP, 0x9100 and double-tagged frames, IPv6 fragment headers, IPv4
//!   first and later fragments, and records with `caplen < len` (every
//!   truncation of a few frames, the wire length kept). Record `i` has the
//!   timestamp `BASE + i` seconds, which tells which records tcpdump kept.
//! - The filters: the shared list, and 400 drawn from the grammar by a
//!   seeded generator (primitives combined with `and`/`or`/`not` and
//!   parentheses, values from the corpus's pools).
//! - pktio's three implementations: the evaluator
//!   ([`Filter::matches_captured`]); the classic BPF program, run by the
//!   kernel (attached with `SO_ATTACH_FILTER` to an `AF_UNIX` datagram
//!   socket, each record's captured bytes sent to it: a socket filter runs
//!   there as on a packet socket, without privilege); the XDP program, run
//!   with `BPF_PROG_TEST_RUN` (needs root; records of at least 14 bytes).
//!   The kernel sees only the captured bytes, so its length is `caplen`:
//!   the compiled programs are compared on truncated records only for
//!   filters without `len`/`greater`/`less`.
//!
//! - The cooked dimension: the same records as Linux cooked v2 records
//!   (`tcpdump -i any`'s files: the EtherType in the protocol field, the
//!   source MAC as the link-layer address, the rest after the 20-byte
//!   header; records shorter than the Ethernet header left out), read by
//!   tcpdump and by pktio as `capture -r` and `capture -i any` judge them
//!   (the evaluator on [`LinkType::as_ethernet`]'s view; the kernel's
//!   cooked program is held to that evaluator on live sockets in
//!   `filter_packet_lab.rs`). Filters tcpdump refuses on that link type
//!   (`ether host`, `vlan`) and `len`/`greater`/`less` (tcpdump counts the
//!   cooked header, pktio an Ethernet one) are left out there.
//!
//! tcpdump is required in CI (`CI=true`); elsewhere the test is skipped
//! visibly when it is missing.

#[path = "filter_corpus.rs"]
mod corpus;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;

use corpus::*;
use pktio::bpf::{Program, XdpAction, MIN_TEST_FRAME};
use pktio::filter::{Filter, OnMatch};
use pktio::pcap::{LinkType, PcapWriter, Timestamp, WriterOptions, LINKTYPE_LINUX_SLL2};
use pktio_lab::skip::Cap;

const BASE_SEC: u64 = 1_600_000_000;

/// One pcap record: what was captured, and the length on the wire.
struct Rec {
    name: String,
    data: Vec<u8>,
    len: usize,
}

fn extra_frames() -> Vec<(&'static str, Vec<u8>)> {
    let udp4 = |frag: u16| ipv4(V4_A, V4_B, 17, frag, &[], &ports(53, 4242, 18));
    let a6 = v6("2001:db8::1");
    let b6 = v6("2001:db8::2");
    let mut frag6 = vec![17u8, 0, 0, 0, 0, 0, 0, 1];
    frag6.extend_from_slice(&ports(53, 4242, 8));
    let mut frag6_tcp = vec![6u8, 0, 0, 0, 0, 0, 0, 1];
    frag6_tcp.extend_from_slice(&tcp(80, 51000, 0x02));
    let mut icmp = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
    icmp.extend_from_slice(&[0x5a; 16]);
    vec![
        (
            "udp4 first fragment (MF)",
            eth(MAC_B, MAC_A, &[], 0x0800, &udp4(0x2000)),
        ),
        (
            "udp4 later fragment off 185",
            eth(MAC_B, MAC_A, &[], 0x0800, &udp4(0x20b9)),
        ),
        (
            "udp4 last fragment",
            eth(MAC_B, MAC_A, &[], 0x0800, &udp4(0x0003)),
        ),
        ("udp4 DF", eth(MAC_B, MAC_A, &[], 0x0800, &udp4(0x4000))),
        (
            "udp4 vlan 100 later fragment",
            eth(MAC_B, MAC_A, &[(0x8100, 100)], 0x0800, &udp4(0x0010)),
        ),
        (
            "udp4 0x9100 vlan 5",
            eth(MAC_B, MAC_A, &[(0x9100, 5)], 0x0800, &udp4(0)),
        ),
        (
            "udp4 qinq 802.1ad 7 / 802.1q 100",
            eth(
                MAC_B,
                MAC_A,
                &[(0x88a8, 7), (0x8100, 100)],
                0x0800,
                &udp4(0),
            ),
        ),
        (
            "tcp6 qinq 100/7",
            eth(
                MAC_A,
                MAC_B,
                &[(0x8100, 100), (0x8100, 7)],
                0x86dd,
                &ipv6(b6, a6, 6, &tcp(443, 80, 0x12)),
            ),
        ),
        (
            "arp vlan 7 vlan 100",
            eth(
                BCAST,
                MAC_A,
                &[(0x88a8, 7), (0x8100, 100)],
                0x0806,
                &arp(1, MAC_A, V4_A, V4_B),
            ),
        ),
        (
            "rarp",
            pad(
                eth(BCAST, MAC_B, &[], 0x8035, &arp(3, MAC_B, V4_B, V4_A)),
                60,
            ),
        ),
        (
            "udp6 fragment header",
            eth(MAC_B, MAC_A, &[], 0x86dd, &ipv6(a6, b6, 44, &frag6)),
        ),
        (
            "tcp6 fragment header vlan 7",
            eth(
                MAC_B,
                MAC_A,
                &[(0x8100, 7)],
                0x86dd,
                &ipv6(a6, b6, 44, &frag6_tcp),
            ),
        ),
        (
            "icmp4 198.18.1.5",
            eth(
                MAC_A,
                MAC_B,
                &[],
                0x0800,
                &ipv4(V4_C, V4_A, 1, 0, &[], &icmp),
            ),
        ),
        (
            "udp4 vlan 4095 port 4242",
            eth(MAC_B, MAC_A, &[(0x8100, 0x0fff)], 0x0800, &udp4(0)),
        ),
    ]
}

fn records() -> Vec<Rec> {
    let mut out: Vec<Rec> = corpus()
        .into_iter()
        .map(|(name, data)| Rec {
            name,
            len: data.len(),
            data,
        })
        .collect();
    let extra = extra_frames();
    for (name, f) in &extra {
        out.push(Rec {
            name: name.to_string(),
            len: f.len(),
            data: f.clone(),
        });
    }
    // Every truncation of a few frames, as a capture with a short snap
    // length writes them: caplen < len.
    let base = base_frames();
    let cut: Vec<&(&str, Vec<u8>)> = base
        .iter()
        .filter(|(n, _)| {
            matches!(
                *n,
                "udp4 vlan 100" | "udp4 qinq 7/100" | "tcp4 options ihl 6 port 80" | "udp6 4242"
            )
        })
        .chain(
            extra
                .iter()
                .filter(|(n, _)| matches!(*n, "udp6 fragment header" | "udp4 first fragment (MF)")),
        )
        .collect();
    for (name, f) in cut {
        for n in 0..f.len() {
            out.push(Rec {
                name: format!("{name} captured {n} of {}", f.len()),
                data: f[..n].to_vec(),
                len: f.len(),
            });
        }
    }
    out
}

/// A filter drawn from the grammar.
fn random_filter(rng: &mut Rng, depth: u32) -> String {
    let pick =
        |rng: &mut Rng, xs: &[&str]| xs[(rng.next_u64() % xs.len() as u64) as usize].to_string();
    let r = rng.next_u64() % 10;
    if depth > 0 && r < 5 {
        let a = random_filter(rng, depth - 1);
        let b = random_filter(rng, depth - 1);
        return match rng.next_u64() % 6 {
            0 => format!("{a} and {b}"),
            1 => format!("{a} or {b}"),
            2 => format!("({a}) and not ({b})"),
            3 => format!("({a} or {b})"),
            4 => format!("not ({a} and {b})"),
            _ => format!("{a} && ({b})"),
        };
    }
    if depth > 0 && r == 5 {
        return format!("not {}", random_filter(rng, depth - 1));
    }
    let dir = pick(rng, &["", "src ", "dst ", "src or dst ", "src and dst "]);
    let port = pick(rng, &["9", "53", "80", "443", "4242", "51000", "7"]);
    match rng.next_u64() % 16 {
        0 => pick(rng, &["ip", "ip6", "arp", "rarp", "ether proto 0x88cc"])
            .replace("rarp", "ether proto 0x8035"),
        1 => pick(rng, &["vlan", "vlan 100", "vlan 7", "vlan 4095", "vlan 5"]),
        2 => pick(rng, &["tcp", "udp", "sctp", "icmp", "icmp6"]),
        3 => pick(
            rng,
            &[
                "proto 17",
                "ip proto 6",
                "ip6 proto 17",
                "ip6 proto 44",
                "proto 44",
                "ip proto 1",
            ],
        ),
        4 | 5 => {
            let q = pick(rng, &["", "", "tcp ", "udp ", "sctp "]);
            format!("{q}{dir}port {port}")
        }
        6 => {
            let (lo, hi) = match rng.next_u64() % 4 {
                0 => (1, 1024),
                1 => (4000, 5000),
                2 => (50, 60),
                _ => (443, 51000),
            };
            format!("{dir}portrange {lo}-{hi}")
        }
        7 | 8 => {
            let a = pick(
                rng,
                &[
                    "198.18.0.1",
                    "198.18.0.2",
                    "198.18.1.5",
                    "2001:db8::1",
                    "2001:db8::2",
                ],
            );
            let q = if a.contains(':') {
                pick(rng, &["", "ip6 "])
            } else {
                pick(rng, &["", "ip ", "arp "])
            };
            format!("{q}{dir}host {a}")
        }
        9 => {
            let n = pick(
                rng,
                &[
                    "198.18.0.0/15",
                    "198.18.1.0/24",
                    "198.18",
                    "10.0.0.0/8",
                    "2001:db8::/32",
                    "2001:db8:0:0:8000::/65",
                    "2001:db8::2/127",
                ],
            );
            format!("{dir}net {n}")
        }
        10 => {
            let d = pick(rng, &["src ", "dst ", "", "src and dst "]);
            let m = pick(
                rng,
                &[
                    "02:00:c6:12:00:01",
                    "02:00:c6:12:00:02",
                    "ff:ff:ff:ff:ff:ff",
                ],
            );
            let d = if d.is_empty() { "host ".to_string() } else { d };
            format!("ether {d}{m}")
        }
        11 => {
            let op = pick(rng, &["<", "<=", ">", ">=", "==", "!="]);
            let n = pick(rng, &["42", "60", "64", "78", "100", "1514"]);
            format!("len {op} {n}")
        }
        12 => format!(
            "{} {}",
            pick(rng, &["greater", "less"]),
            pick(rng, &["60", "64", "100"])
        ),
        13 => format!("vlan and {}", random_filter(rng, 0)),
        14 => format!("vlan and vlan and {}", random_filter(rng, 0)),
        _ => format!("{dir}port {port} or {port}"),
    }
}

fn filters() -> Vec<String> {
    let mut out: Vec<String> = FILTERS.iter().map(|s| s.to_string()).collect();
    out.extend(
        [
            "not ip",
            "udp",
            "not vlan and udp",
            "vlan and not ip",
            "vlan or ip",
            "ip or vlan",
            "(vlan or ip) and udp",
            "vlan 7 and vlan 100 and udp",
            "vlan and vlan and arp",
            "ip or not ip",
            "port 53 or not port 53",
            "not port 9",
            "udp and not ip6 proto 44",
            "tcp and ip6",
            "host 198.18.0.2 and ether proto 0x8035",
            "ether proto 0x8035",
            "ether proto 0x9100",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut rng = Rng(0x7cd0_4242_1600_5eed);
    for _ in 0..400 {
        let depth = 1 + (rng.next_u64() % 3) as u32;
        out.push(random_filter(&mut rng, depth));
    }
    out
}

/// Removes the corpus file even when the test fails.
struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Record indices of a pcap file tcpdump wrote (timestamps `BASE + i`).
fn indices(pcap: &[u8]) -> BTreeSet<usize> {
    assert!(pcap.len() >= 24, "tcpdump wrote no pcap header");
    let magic = u32::from_le_bytes(pcap[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let u32_at = |o: usize| {
        let b: [u8; 4] = pcap[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = BTreeSet::new();
    let mut o = 24;
    while o + 16 <= pcap.len() {
        let sec = u64::from(u32_at(o));
        let caplen = u32_at(o + 8) as usize;
        out.insert((sec - BASE_SEC) as usize);
        o += 16 + caplen;
    }
    assert_eq!(o, pcap.len(), "tcpdump's output ends mid-record");
    out
}

/// Writes `recs` (with their indices) to `path`, a pcap file of `linktype`.
fn write_corpus<'a>(
    path: &std::path::Path,
    linktype: u16,
    recs: impl Iterator<Item = (usize, &'a [u8], usize)>,
) {
    let opts = WriterOptions {
        linktype,
        ..WriterOptions::default()
    };
    let mut w = PcapWriter::create(path, opts).expect("create corpus file");
    for (i, data, len) in recs {
        let ts = Timestamp {
            sec: BASE_SEC + i as u64,
            nsec: 0,
        };
        w.write_packet(ts, data, len as u32).unwrap();
    }
    w.finish(None).unwrap();
}

/// The Linux cooked v2 record of an Ethernet record (at least 14 bytes):
/// the EtherType as protocol, interface 1, ARPHRD_ETHER, to this host,
/// the source MAC as the 6-byte link-layer address; and its length.
fn cooked(r: &Rec) -> (Vec<u8>, usize) {
    let mut c = r.data[12..14].to_vec();
    c.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6]);
    c.extend_from_slice(&r.data[6..12]);
    c.extend_from_slice(&[0, 0]);
    c.extend_from_slice(&r.data[14..]);
    (c, r.len - 14 + 20)
}

/// `tcpdump -r FILE FILTER`'s selection, `None` when it refuses the filter
/// for the file's link type.
fn tcpdump_selects_or_refuses(file: &std::path::Path, filter: &str) -> Option<BTreeSet<usize>> {
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(file)
        .args(["-w", "-", "--"])
        .arg(filter)
        .output()
        .expect("run tcpdump");
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.success() {
        true => Some(indices(&out.stdout)),
        false if err.contains("expression rejects all packets") => Some(BTreeSet::new()),
        false => None,
    }
}

/// The cooked dimension (see the module docs): the evaluator on each
/// cooked record's Ethernet view selects what tcpdump selects from the
/// cooked file. Returns the failures and how many filters were compared.
fn cooked_disagreements(recs: &[Rec], filters: &[String]) -> (Vec<String>, usize) {
    let path = std::env::temp_dir().join(format!("pktio-filter-sll2-{}.pcap", std::process::id()));
    let file = TempFile(path);
    let cooked: Vec<(usize, Vec<u8>, usize)> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.data.len() >= 14)
        .map(|(i, r)| {
            let (c, len) = cooked(r);
            (i, c, len)
        })
        .collect();
    write_corpus(
        &file.0,
        LINKTYPE_LINUX_SLL2,
        cooked.iter().map(|(i, c, len)| (*i, &c[..], *len)),
    );
    let (mut failures, mut compared) = (Vec::new(), 0);
    let mut conv = Vec::new();
    for text in filters.iter().filter(|t| !has_len(t)) {
        let Some(want) = tcpdump_selects_or_refuses(&file.0, text) else {
            continue;
        };
        compared += 1;
        let f = Filter::parse(text).unwrap();
        let got: BTreeSet<usize> = cooked
            .iter()
            .filter(|(_, c, len)| {
                let (frame, wire) = LinkType::LinuxSll2.as_ethernet(c, *len as u32, &mut conv);
                f.matches_captured(frame, wire as usize)
            })
            .map(|(i, ..)| *i)
            .collect();
        if got != want {
            failures.push(format!(
                "{text:?} on Linux cooked v2: evaluator selects {} records, tcpdump {}\n  only pktio:{}\n  only tcpdump:{}",
                got.len(),
                want.len(),
                show(recs, &got.difference(&want).copied().collect()),
                show(recs, &want.difference(&got).copied().collect()),
            ));
        }
    }
    (failures, compared)
}

fn tcpdump_selects(file: &std::path::Path, filter: &str) -> BTreeSet<usize> {
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(file)
        .args(["-w", "-", "--"])
        .arg(filter)
        .output()
        .expect("run tcpdump");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if err.contains("expression rejects all packets") {
            return BTreeSet::new();
        }
        panic!("tcpdump refused {filter:?}: {err}");
    }
    indices(&out.stdout)
}

fn try_recv(rx: &UnixDatagram, buf: &mut [u8]) -> bool {
    match rx.recv(buf) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("recv: {e}"),
    }
}

fn has_len(filter: &str) -> bool {
    ["len", "greater", "less"].iter().any(|w| {
        filter
            .split(|c: char| !c.is_alphanumeric())
            .any(|t| t == *w)
    })
}

fn show(recs: &[Rec], set: &BTreeSet<usize>) -> String {
    set.iter()
        .take(4)
        .map(|&i| {
            let r = &recs[i];
            format!(
                "\n    #{i} {} ({} of {} bytes): {:02x?}",
                r.name,
                r.data.len(),
                r.len,
                &r.data[..r.data.len().min(64)]
            )
        })
        .collect()
}

#[test]
fn pktio_selects_what_tcpdump_selects() {
    // tcpdump is the reference this test is about: without it, a failure.
    if let Err(e) = Command::new("tcpdump").arg("--version").output() {
        panic!("tcpdump does not run ({e}): apt-get install tcpdump (.ci/run installs it)");
    }
    let recs = records();
    let path = std::env::temp_dir().join(format!("pktio-filter-diff-{}.pcap", std::process::id()));
    let file = TempFile(path);
    write_corpus(
        &file.0,
        pktio::pcap::LINKTYPE_ETHERNET,
        recs.iter()
            .enumerate()
            .map(|(i, r)| (i, &r.data[..], r.len)),
    );

    // The XDP part needs the capabilities to load programs; the rest none.
    let xdp_ok = !pktio_lab::skip::lacks(
        "pktio_selects_what_tcpdump_selects (its XDP part)",
        &[Cap::BPF, Cap::NET_ADMIN],
        "loading XDP programs",
    );
    let mut buf = vec![0u8; 4096];
    let mut failures = Vec::new();
    let (mut n_eval, mut n_cbpf, mut n_xdp) = (0usize, 0usize, 0usize);
    let filters = filters();
    for text in &filters {
        let f = Filter::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let want = tcpdump_selects(&file.0, text);
        let lenful = has_len(text);
        // (a) the evaluator
        let eval: BTreeSet<usize> = (0..recs.len())
            .filter(|&i| f.matches_captured(&recs[i].data, recs[i].len))
            .collect();
        n_eval += recs.len();
        if eval != want {
            failures.push(format!(
                "{text:?}: evaluator selects {} records, tcpdump {}\n  only pktio:{}\n  only tcpdump:{}",
                eval.len(),
                want.len(),
                show(&recs, &eval.difference(&want).copied().collect()),
                show(&recs, &want.difference(&eval).copied().collect()),
            ));
            continue;
        }
        let comparable = |r: &Rec| !lenful || r.data.len() == r.len;
        // (b) classic BPF in the kernel
        let prog = f.cbpf_program(96).unwrap();
        let (tx, rx) = UnixDatagram::pair().expect("socketpair");
        rx.set_nonblocking(true).unwrap();
        prog.attach(rx.as_fd())
            .unwrap_or_else(|e| panic!("{text:?}: the kernel refused the classic program: {e}"));
        for (i, r) in recs.iter().enumerate() {
            if !comparable(r) {
                continue;
            }
            tx.send(&r.data).expect("send");
            let got = try_recv(&rx, &mut buf);
            n_cbpf += 1;
            if got != want.contains(&i) {
                failures.push(format!(
                    "{text:?}: classic BPF says {got}, tcpdump {} on{}\n{}",
                    !got,
                    show(&recs, &[i].into()),
                    prog.listing()
                ));
                break;
            }
        }
        // (c) the XDP program
        if !xdp_ok {
            continue;
        }
        let code = f
            .xdp_program_with(OnMatch::Return(XdpAction::Drop), XdpAction::Pass)
            .unwrap();
        let prog = Program::load_xdp(&code, &[])
            .unwrap_or_else(|e| panic!("{text:?}: the verifier refused:\n{}\n{e}", code.listing()));
        for (i, r) in recs.iter().enumerate() {
            if r.data.len() < MIN_TEST_FRAME || !comparable(r) {
                continue;
            }
            let res = prog.test_run(&r.data, 1).expect("BPF_PROG_TEST_RUN");
            let got = res.action() == Some(XdpAction::Drop);
            n_xdp += 1;
            if got != want.contains(&i) {
                failures.push(format!(
                    "{text:?}: XDP says {got}, tcpdump {} on{}",
                    !got,
                    show(&recs, &[i].into())
                ));
                break;
            }
        }
    }
    let (cooked_failures, n_cooked) = cooked_disagreements(&recs, &filters);
    failures.extend(cooked_failures);
    eprintln!(
        "{} filters × {} records: {n_eval} evaluator, {n_cbpf} classic BPF, {n_xdp} XDP verdicts compared with tcpdump's; {n_cooked} filters on the Linux cooked v2 copy",
        filters.len(),
        recs.len()
    );
    assert!(
        n_cooked * 3 > filters.len(),
        "only {n_cooked} filters compared on cooked records"
    );
    assert!(
        failures.is_empty(),
        "{} of {} filters disagree with tcpdump:\n{}",
        failures.len(),
        filters.len(),
        failures
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
