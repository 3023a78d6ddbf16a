//! `pktio capture -r`: lines as `tcpdump -n` prints them for the same
//! files (every -e, -t, -x, -X, -A form), the link type honoured (Linux
//! cooked v1/v2, raw IP: the filter at the right offsets, records written
//! back unchanged), and the refusals: `-r X -w X`, a symbolic link at
//! `-w`, an unsupported link type. No privilege needed.

mod capture_support;
mod cli_support;

use std::process::{Command, Output};

use capture_support::*;
use cli_support::{pktio, require_tool, text};

fn pktio_r(args: &[&str]) -> Output {
    pktio()
        .env("TZ", "UTC")
        .arg("capture")
        .args(args)
        .output()
        .unwrap()
}

fn tcpdump_r(args: &[&str]) -> Output {
    Command::new("tcpdump")
        .env("TZ", "UTC")
        .arg("-n")
        .args(args)
        .output()
        .unwrap()
}

/// The corpus without its VLAN-tagged frame.
fn without_vlan() -> Vec<Vec<u8>> {
    corpus()
        .into_iter()
        .filter(|f| f[12..14] != [0x81, 0x00])
        .collect()
}

/// Frames whose `-v` lines differ in every field tcpdump -v shows: DF and
/// reserved flags, ECN bits, ttl 0, a bad IP header checksum, NOP/EOL
/// options, a later fragment, correct TCP and UDP-over-IPv6 checksums, a
/// wrong ICMP checksum, an IPv6 flow label and traffic class.
fn verbose_corpus() -> Vec<Vec<u8>> {
    let c = corpus();
    let fix_ip = |f: &mut Vec<u8>| {
        let hl = usize::from(f[14] & 15) * 4;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = pktio::wire::checksum(&f[14..14 + hl]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    };
    let fix_l4 = |f: &mut Vec<u8>, at: usize| {
        // TCP (checksum at 16) over IPv4 with a 20-byte header.
        let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
        let seg_len = total - 20;
        f[34 + at..36 + at].copy_from_slice(&[0, 0]);
        let mut ph = f[26..34].to_vec();
        ph.extend_from_slice(&[0, f[23]]);
        ph.extend_from_slice(&(seg_len as u16).to_be_bytes());
        ph.extend_from_slice(&f[34..34 + seg_len]);
        let c = pktio::wire::checksum(&ph);
        f[34 + at..36 + at].copy_from_slice(&c.to_be_bytes());
    };
    let mut out = Vec::new();
    // TCP with DF, tos 0x10 and a correct checksum.
    let mut f = c[3].clone();
    f[15] = 0x10;
    f[20] = 0x40;
    fix_ip(&mut f);
    fix_l4(&mut f, 16);
    out.push(f);
    // UDP with ECN CE, MF and reserved flags, id 65535 and a correct IPv4 UDP checksum (-vv).
    let mut f = c[0].clone();
    f[15] = 3;
    f[18..20].copy_from_slice(&[0xff, 0xff]);
    f[20] = 0xa0;
    fix_ip(&mut f);
    fix_l4(&mut f, 6);
    out.push(f);
    // A later fragment, ECT(1).
    let mut f = c[0].clone();
    f[15] = 1;
    f[20..22].copy_from_slice(&[0x00, 0x03]);
    fix_ip(&mut f);
    out.push(f);
    // ttl 0, ECT(0) and a bad header checksum.
    let mut f = c[0].clone();
    f[15] = 2;
    f[22] = 0;
    fix_ip(&mut f);
    f[24] ^= 0x11;
    out.push(f);
    // A wrong ICMP checksum.
    let mut f = c[1].clone();
    f[36] ^= 0xff;
    out.push(f);
    // NOP, NOP, NOP, EOL options.
    let mut f = c[0].clone();
    f.splice(34..34, [1, 1, 1, 0]);
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip(&mut f);
    out.push(f);
    // IPv6 UDP with a correct checksum, a traffic class and a flow label.
    let mut f = c[5].clone();
    f[14..18].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
    let mut ph = f[22..54].to_vec();
    ph.extend_from_slice(&26u32.to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, 17]);
    ph.extend_from_slice(&f[54..80]);
    let c6 = pktio::wire::checksum(&ph);
    f[60..62].copy_from_slice(&c6.to_be_bytes());
    out.push(f);
    // The IPv6 UDP with its checksum (0) wrong.
    out.push(c[5].clone());
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn lines_are_tcpdumps_for_every_output_form() {
    require_tool("tcpdump", "tcpdump");
    let dir = TempDir::new("cap-lines");
    let eth = dir.write("eth.pcap", &pcap(1, &corpus()));
    let sll: Vec<Vec<u8>> = corpus().iter().map(|f| to_sll(f)).collect();
    let sll = dir.write("sll.pcap", &pcap(113, &sll[..6]));
    // Linux cooked v2 (`-i any`): the interface name (this host's, for
    // both tools) and the direction on every line.
    let mut sll2: Vec<Vec<u8>> = corpus().iter().map(|f| to_sll2(f)).collect();
    sll2.remove(6); // the VLAN-tagged frame
    for (i, r) in sll2.iter_mut().enumerate() {
        r[10] = [0, 4, 1, 2, 3][i % 5]; // In, Out, B, M, P
        r[4..8].copy_from_slice(&(i as u32 % 3).to_be_bytes()); // lo (1) and unknown ones
    }
    let sll2 = dir.write("sll2.pcap", &pcap(276, &sll2));
    let verbose = dir.write("verbose.pcap", &pcap(1, &verbose_corpus()));
    for (file, forms) in [
        (
            &eth,
            &[
                "", "-e", "-x", "-xx", "-X", "-XX", "-A", "-t", "-tt", "-ttt", "-tttt", "-ttttt",
                "-v", "-vv", "-ev", "-evv",
            ][..],
        ),
        (&sll, &["", "-e", "-x", "-tt", "-v", "-ev"][..]),
        (&verbose, &["-v", "-vv", "-ev"][..]),
        (&sll2, &["", "-e", "-v", "-ev", "-x", "-X"][..]),
    ] {
        for form in forms {
            let mut args: Vec<&str> = vec!["-S", "-r", s(file)];
            if !form.is_empty() {
                args.insert(0, form);
            }
            let ours = pktio_r(&args);
            assert!(ours.status.success(), "{args:?}: {}", text(&ours));
            let theirs = tcpdump_r(&args);
            assert!(
                theirs.status.success(),
                "tcpdump {args:?}: {}",
                text(&theirs)
            );
            assert_eq!(
                stdout(&ours),
                stdout(&theirs),
                "pktio capture {args:?} (left) vs tcpdump -n (right)"
            );
        }
    }
    // With a filter, the same packets (the VLAN-tagged frame left out: the
    // filter's VLAN semantics are the differential test's).
    let untagged = dir.write("untagged.pcap", &pcap(1, &without_vlan()));
    for f in [
        "udp",
        "icmp",
        "arp",
        "ip6",
        "tcp",
        "udp dst port 9",
        "not ip",
    ] {
        let ours = pktio_r(&["-r", s(&untagged), f]);
        let theirs = tcpdump_r(&["-r", s(&untagged), f]);
        assert_eq!(stdout(&ours), stdout(&theirs), "filter {f:?}");
    }
}

#[test]
fn cooked_and_raw_files_are_filtered_at_the_right_offsets() {
    let dir = TempDir::new("cap-sll");
    let frames = corpus();
    // UDP (0), ICMP (1), TCP (2, 3), ARP (4), IPv6 UDP (5).
    let v1: Vec<Vec<u8>> = frames[..6].iter().map(|f| to_sll(f)).collect();
    let v2: Vec<Vec<u8>> = frames[..6].iter().map(|f| to_sll2(f)).collect();
    let raw: Vec<Vec<u8>> = [0usize, 1, 2, 3, 5]
        .iter()
        .map(|&i| {
            let f = &frames[i];
            // Without the Ethernet padding: the IP datagram alone.
            let len = if f[12..14] == [0x86, 0xdd] {
                40 + usize::from(u16::from_be_bytes([f[18], f[19]]))
            } else {
                usize::from(u16::from_be_bytes([f[16], f[17]]))
            };
            f[14..14 + len].to_vec()
        })
        .collect();
    let cases = [
        (
            "sll",
            113,
            &v1,
            &[
                ("udp", 2),
                ("udp dst port 9", 2),
                ("icmp", 1),
                ("arp", 1),
                ("tcp dst port 4000", 2),
                ("ip6", 1),
                ("src host 198.18.0.1", 5),
            ][..],
        ),
        (
            "sll2",
            276,
            &v2,
            &[("udp", 2), ("ip and udp port 4242", 1), ("arp", 1)][..],
        ),
        (
            "raw",
            101,
            &raw,
            &[("udp", 2), ("ip6", 1), ("tcp", 2), ("icmp", 1)][..],
        ),
        ("raw12", 12, &raw, &[("udp", 2)][..]),
    ];
    for (name, linktype, records, filters) in cases {
        let file = dir.write(&format!("{name}.pcap"), &pcap(linktype, records));
        for (f, want) in filters {
            let o = pktio_r(&["-r", s(&file), f]);
            assert!(o.status.success(), "{name} {f}: {}", text(&o));
            assert_eq!(
                stdout(&o).lines().count(),
                *want,
                "{name} {f}: {}",
                text(&o)
            );
            if linktype != 12 {
                require_tool("tcpdump", "tcpdump");
                let t = tcpdump_r(&["-r", s(&file), f]);
                assert_eq!(stdout(&t).lines().count(), *want, "tcpdump {name} {f}");
            }
        }
        // -w keeps the records and the link type, byte for byte.
        let out = dir.path(&format!("{name}-udp.pcap"));
        let o = pktio_r(&["-r", s(&file), "-w", s(&out), "udp"]);
        assert!(o.status.success(), "{}", text(&o));
        let back = pktio_r(&["-r", s(&out), "-tt"]);
        let direct = pktio_r(&["-r", s(&file), "-tt", "udp"]);
        assert_eq!(stdout(&back), stdout(&direct), "{name}");
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(
            u32::from_ne_bytes(bytes[20..24].try_into().unwrap()),
            linktype,
            "{name}: link type kept"
        );
        // Each UDP record of the input appears whole in the output.
        for r in records.iter().filter(|r| {
            let mut scratch = Vec::new();
            let (frame, _) = pktio::pcap::LinkType::from_code(linktype as u16)
                .unwrap()
                .as_ethernet(r, r.len() as u32, &mut scratch);
            pktio::filter::Filter::parse("udp").unwrap().matches(frame)
        }) {
            assert!(
                bytes.windows(r.len()).any(|w| w == r.as_slice()),
                "{name}: a UDP record is in the output unchanged"
            );
        }
    }
}

#[test]
fn an_unsupported_link_type_is_an_error() {
    let dir = TempDir::new("cap-lt");
    let file = dir.write("wifi.pcap", &pcap(105, &[vec![0u8; 40]]));
    let o = pktio_r(&["-r", s(&file), "udp"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("link type 105 is not supported"), "{e}");
    assert!(
        e.contains("LINUX_SLL (113)"),
        "names what is supported: {e}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn reading_and_writing_the_same_file_is_refused() {
    let dir = TempDir::new("cap-same");
    let bytes = pcap(1, &corpus());
    let file = dir.write("in.pcap", &bytes);
    let hard = dir.path("hard.pcap");
    std::fs::hard_link(&file, &hard).unwrap();
    let link = dir.path("link.pcap");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dotted = format!("{}/./in.pcap", dir.path("").display());
    for w in [s(&file), s(&hard), s(&link), dotted.as_str()] {
        let o = pktio_r(&["-r", s(&file), "-w", w]);
        assert_eq!(o.status.code(), Some(2), "-w {w}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("are the same file"),
            "{}",
            text(&o)
        );
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "-w {w}: input intact");
    }
}

#[test]
fn a_symbolic_link_at_w_is_not_followed() {
    let dir = TempDir::new("cap-link");
    let input = dir.write("in.pcap", &pcap(1, &corpus()));
    // A link to a file that exists, and one to a file that does not.
    let victim = dir.write("victim", b"precious");
    let to_victim = dir.path("out1.pcap");
    std::os::unix::fs::symlink(&victim, &to_victim).unwrap();
    let planted = dir.path("planted");
    let dangling = dir.path("out2.pcap");
    std::os::unix::fs::symlink(&planted, &dangling).unwrap();
    for w in [&to_victim, &dangling] {
        let o = pktio_r(&["-r", s(&input), "-w", s(w), "udp"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("is a symbolic link"), "{e}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        !planted.exists(),
        "nothing created through the dangling link"
    );
    // A plain file is written (and overwritten) as before.
    let plain = dir.path("plain.pcap");
    for _ in 0..2 {
        let o = pktio_r(&["-r", s(&input), "-w", s(&plain), "udp"]);
        assert!(o.status.success(), "{}", text(&o));
    }
}

#[test]
fn filter_from_a_file_and_the_compiled_program() {
    let dir = TempDir::new("cap-f");
    let input = dir.write("in.pcap", &pcap(1, &without_vlan()));
    let ffile = dir.write(
        "f.txt",
        b"# DNS-ish\nudp   # the transport\n and dst port 9\n",
    );
    let o = pktio_r(&["-r", s(&input), "-F", s(&ffile)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", text(&o));
    // Both a file and words: refused (exit 2), as a usage error.
    let o = pktio_r(&["-r", s(&input), "-F", s(&ffile), "tcp"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // -d: a tcpdump -d style listing of the classic BPF program.
    let o = pktio_r(&["-d", "udp", "port", "53"]);
    assert!(o.status.success(), "{}", text(&o));
    let l = stdout(&o);
    assert!(l.starts_with("(000) "), "{l}");
    assert!(l.contains("ret "), "{l}");
    // --steal -d: the XDP program's instructions.
    let o = pktio_r(&["--steal", "-d", "udp"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains("exit"), "{}", text(&o));
}
