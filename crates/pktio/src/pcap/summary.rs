//! One line per packet, in the manner of `tcpdump -n` (4.99):
//!
//! ```text
//! IP 198.18.0.1.9 > 198.18.0.2.4242: UDP, length 18
//! IP6 2001:db8::1.80 > 2001:db8::2.40000: Flags [S.], seq 1, ack 2, win 512, length 0
//! ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 46
//! ```
//!
//! with `-e`'s link-level prefix ([`link_header`]) and the time stamp forms
//! of `-t`…`-ttttt` ([`TimeFormat`]). What tcpdump prints and this does
//! not: TCP options and relative sequence numbers (`seq` and `ack` are
//! absolute, as with `tcpdump -S`), application-layer decodes (DNS, …).
//!
//! [`summary_verbose`] is `tcpdump -n -v`: the IPv4 header line (`tos`,
//! `ttl`, `id`, `offset`, `flags`, `proto`, `length`, NOP/EOL options, a
//! bad header checksum) followed by the transport on the next line, the
//! IPv6 `(hlim …, next-header …, payload length: …)` prefix, TCP's
//! `cksum 0x… (correct)`, UDP over IPv6's `[udp sum ok]`, ICMP's wrong
//! checksum, ARP's hardware and protocol. With `-vv` also UDP over IPv4's
//! checksum. Kept in the plain form: IPv4 options other than NOP/EOL, ARP
//! other than Ethernet/IPv4, ICMPv6 (tcpdump decodes its bodies).

use std::fmt::Write;

use super::format::Timestamp;
use crate::filter::{Dissected, Network, Transport};
use pktio_host::bytes::be_u16 as be16;

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

/// What `-v` needs to check a transport checksum: the pseudo-header's
/// addresses and whether the datagram is a fragment.
struct Check {
    verbose: u8,
    fragmented: bool,
    v6: bool,
    addrs: Vec<u8>,
}

impl Check {
    fn none() -> Check {
        Check {
            verbose: 0,
            fragmented: false,
            v6: false,
            addrs: Vec::new(),
        }
    }

    /// The Internet checksum ([`crate::wire::checksum`]) over the pseudo-header and the `len` bytes at `off`,
    /// when all of them were captured (0: correct).
    fn sum(&self, d: &[u8], off: usize, len: usize, proto: u8) -> Option<u16> {
        let seg = d.get(off..off.checked_add(len)?)?;
        let mut b = self.addrs.clone();
        if self.v6 {
            b.extend_from_slice(&(len as u32).to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, proto]);
        } else {
            b.extend_from_slice(&[0, proto]);
            b.extend_from_slice(&(len as u16).to_be_bytes());
        }
        b.extend_from_slice(seg);
        Some(crate::wire::checksum(&b))
    }
}

/// The checksum the field should hold, as tcpdump's `in_cksum_shouldbe`.
fn shouldbe(field: u16, computed: u16) -> u16 {
    let mut s = u32::from(field) + u32::from(computed);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// tcpdump's name for an IP protocol number (`tok2str(ipproto_values)`).
fn ipproto_name(p: u8) -> &'static str {
    match p {
        0 => "Options",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        8 => "EGP",
        9 => "IGRP",
        17 => "UDP",
        33 => "DCCP",
        41 => "IPv6",
        43 => "Routing",
        44 => "Fragment",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "NONE",
        60 => "Destination Options",
        88 => "EIGRP",
        89 => "OSPF",
        103 => "PIM",
        108 => "Compressed IP",
        112 => "VRRP",
        113 => "PGM",
        132 => "SCTP",
        135 => "Mobility",
        _ => "unknown",
    }
}

/// `-v`'s IPv4 header: `(tos 0x0, ttl 64, id 1, offset 0, flags [DF],
/// proto UDP (17), length 46)`, or `None` where it is not tcpdump's
/// (options other than NOP and EOL, a header not captured).
fn ipv4_verbose(p: &Dissected<'_>) -> Option<String> {
    let h = p.data.get(p.l3_offset..)?;
    let hl = usize::from(h.first()? & 0x0f) * 4;
    let hdr = h.get(..hl.max(20))?;
    let (tos, ttl, proto) = (hdr[1], hdr[8], hdr[9]);
    let total = be16(hdr, 2)?;
    let id = be16(hdr, 4)?;
    let off = be16(hdr, 6)?;
    let mut s = format!("(tos 0x{tos:x}");
    s.push_str(match tos & 3 {
        1 => ",ECT(1)",
        2 => ",ECT(0)",
        3 => ",CE",
        _ => "",
    });
    if ttl >= 1 {
        let _ = write!(s, ", ttl {ttl}");
    }
    let mut flags = Vec::new();
    for (bit, name) in [(0x2000, "+"), (0x4000, "DF"), (0x8000, "rsvd")] {
        if off & bit != 0 {
            flags.push(name);
        }
    }
    let _ = write!(
        s,
        ", id {id}, offset {}, flags [{}], proto {} ({proto}), length {total}",
        u32::from(off & 0x1fff) * 8,
        if flags.is_empty() {
            "none".to_string()
        } else {
            flags.join(", ")
        },
        ipproto_name(proto)
    );
    if hl > 20 {
        let mut names = Vec::new();
        for &o in &hdr[20..] {
            match o {
                0 => names.push("EOL"),
                1 => names.push("NOP"),
                _ => return None,
            }
        }
        let _ = write!(s, ", options ({})", names.join(","));
    }
    let sum = crate::wire::checksum(hdr);
    if sum != 0 {
        let field = be16(hdr, 10)?;
        let _ = write!(s, ", bad cksum {field:x} (->{:x})!", shouldbe(field, sum));
    }
    s.push(')');
    Some(s)
}

/// `-v`'s IPv6 prefix: `(hlim 64, next-header UDP (17) payload length: 26)`.
fn ipv6_verbose(p: &Dissected<'_>) -> Option<String> {
    let h = p.data.get(p.l3_offset..p.l3_offset + 40)?;
    let flow = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let mut s = String::from("(");
    if flow & 0x0ff0_0000 != 0 {
        let _ = write!(s, "class 0x{:02x}, ", (flow & 0x0ff0_0000) >> 20);
    }
    if flow & 0x000f_ffff != 0 {
        let _ = write!(s, "flowlabel 0x{:05x}, ", flow & 0x000f_ffff);
    }
    let _ = write!(
        s,
        "hlim {}, next-header {} ({}) payload length: {})",
        h[7],
        ipproto_name(h[6]),
        h[6],
        be16(h, 4)?
    );
    Some(s)
}

/// The transport part: `UDP, length 18`, `Flags [S.], length 0`, …
/// `l4_len` is the length of the transport header and payload from the IP
/// header, when known.
fn transport(
    p: &Dissected<'_>,
    t: &Transport,
    l4_len: Option<usize>,
    v6: bool,
    ck: &Check,
) -> String {
    let d = p.data;
    match t.proto {
        17 => match be16(d, t.offset + 4) {
            Some(ulen) => {
                let mut s = String::new();
                let field = be16(d, t.offset + 6).unwrap_or(0);
                let len = l4_len.map(|l| l.min(usize::from(ulen)));
                if ck.verbose >= 2 && !v6 && field == 0 {
                    s.push_str("[no cksum] ");
                } else if (ck.verbose >= 2 || (v6 && ck.verbose >= 1)) && !ck.fragmented {
                    if let Some(sum) = len.and_then(|l| ck.sum(d, t.offset, l, 17)) {
                        if sum != 0 {
                            let _ = write!(
                                s,
                                "[bad udp cksum 0x{field:04x} -> 0x{:04x}!] ",
                                shouldbe(field, sum)
                            );
                        } else {
                            s.push_str("[udp sum ok] ");
                        }
                    }
                }
                let _ = write!(s, "UDP, length {}", usize::from(ulen).saturating_sub(8));
                s
            }
            None => "UDP [|udp]".into(),
        },
        6 => {
            let hl = d.get(t.offset + 12).map(|b| usize::from(b >> 4) * 4);
            match (t.tcp_flags, hl) {
                (Some(flags), Some(hl)) => {
                    let mut s = format!("Flags [{}]", tcp_flags(flags));
                    if ck.verbose >= 1 && !ck.fragmented {
                        if let Some(sum) = l4_len.and_then(|l| ck.sum(d, t.offset, l, 6)) {
                            let field = be16(d, t.offset + 16).unwrap_or(0);
                            let _ = write!(s, ", cksum 0x{field:04x}");
                            if sum != 0 {
                                let _ = write!(s, " (incorrect -> 0x{:04x})", shouldbe(field, sum));
                            } else {
                                s.push_str(" (correct)");
                            }
                        }
                    }
                    let be32 = |at: usize| {
                        d.get(at..at + 4)
                            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    };
                    let payload = l4_len.map(|l| l.saturating_sub(hl));
                    if let Some(seq) = be32(t.offset + 4) {
                        match payload {
                            Some(n) if n > 0 => {
                                let _ = write!(s, ", seq {seq}:{}", seq.wrapping_add(n as u32));
                            }
                            _ => {
                                let _ = write!(s, ", seq {seq}");
                            }
                        }
                    }
                    if flags & 0x10 != 0 {
                        if let Some(ack) = be32(t.offset + 8) {
                            let _ = write!(s, ", ack {ack}");
                        }
                    }
                    if let Some(win) = be16(d, t.offset + 14) {
                        let _ = write!(s, ", win {win}");
                    }
                    if let Some(n) = payload {
                        let _ = write!(s, ", length {n}");
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
            let echo = matches!((v6, ty), (false, Some(0 | 8)) | (true, Some(128 | 129)));
            if let (true, Some(id), Some(seq)) =
                (echo, be16(d, t.offset + 4), be16(d, t.offset + 6))
            {
                let _ = write!(s, ", id {id}, seq {seq}");
            }
            if let Some(l) = l4_len {
                let _ = write!(s, ", length {l}");
                let whole = d.get(t.offset..t.offset + l);
                if let (false, true, false, Some(body)) =
                    (v6, ck.verbose >= 1, ck.fragmented, whole)
                {
                    let sum = crate::wire::checksum(body);
                    if sum != 0 {
                        let field = be16(d, t.offset + 2).unwrap_or(0);
                        let _ = write!(
                            s,
                            " (wrong icmp cksum {field:x} (->{:x})!)",
                            shouldbe(field, sum)
                        );
                    }
                }
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

/// The name tcpdump gives an ethertype.
fn ethertype_name(t: u16) -> &'static str {
    match t {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        0x8035 => "Reverse ARP",
        0x8100 => "802.1Q",
        0x88a8 => "802.1Q-QinQ",
        0x9100 => "802.1Q-9100",
        0x88cc => "LLDP",
        0x8847 => "MPLS unicast",
        0x8848 => "MPLS multicast",
        0x8863 => "PPPoE D",
        0x8864 => "PPPoE S",
        _ => "Unknown",
    }
}

/// What `tcpdump -e` prints before the network layer:
/// `02:00:c6:12:00:01 > 02:00:c6:12:00:02, ethertype IPv4 (0x0800), length 60: `
/// (for a tagged frame, the tag follows: `vlan 100, p 0, ethertype IPv4
/// (0x0800), `). Follow it with [`summary_without_link`].
pub fn link_header(p: &Dissected<'_>) -> String {
    let (Some(src), Some(dst)) = (p.eth_src, p.eth_dst) else {
        return String::new();
    };
    let mut s = format!("{} > {}", mac(&src), mac(&dst));
    let Some(outer) = be16(p.data, 12) else {
        let _ = write!(s, ", length {}: ", p.wire_len);
        return s;
    };
    if outer < 0x0600 {
        let _ = write!(s, ", 802.3, length {}: ", p.wire_len);
        return s;
    }
    let _ = write!(
        s,
        ", ethertype {} (0x{outer:04x}), length {}: ",
        ethertype_name(outer),
        p.wire_len
    );
    if let Some(tag) = p.vlan {
        match (tag.tci, p.ethertype) {
            (Some(tci), Some(inner)) => {
                let _ = write!(
                    s,
                    "vlan {}, p {}, {}ethertype {} (0x{inner:04x}), ",
                    tci & 0x0fff,
                    tci >> 13,
                    if tci & 0x1000 != 0 { "DEI, " } else { "" },
                    ethertype_name(inner)
                );
            }
            _ => s.push_str("[|vlan] "),
        }
    }
    s
}

/// A tcpdump-like summary of the frame's L3 and L4 headers, as it follows
/// `-e`'s [`link_header`]: without the protocol word that names the
/// network layer (`IP`, `IP6`, `ARP,`).
pub fn summary_without_link(p: &Dissected<'_>) -> String {
    summary_without_link_verbose(p, 0)
}

/// [`summary_without_link`] as `tcpdump -v` (`verbose` 1) or `-vv` (2)
/// prints it: [`summary_verbose`] without the protocol word.
pub fn summary_without_link_verbose(p: &Dissected<'_>, verbose: u8) -> String {
    let s = summary_verbose(p, verbose);
    for word in ["IP6 ", "IP ", "ARP, "] {
        if let Some(rest) = s.strip_prefix(word) {
            return rest.to_string();
        }
    }
    if matches!(p.net, Network::Other(_)) {
        return String::new();
    }
    s
}

/// A tcpdump-like summary of the frame's L2 (where tcpdump shows it
/// without `-e`), L3 and L4 headers, as `tcpdump -n` prints it. A VLAN
/// tag is not shown (tcpdump shows it only with `-e`).
pub fn summary(p: &Dissected<'_>) -> String {
    summary_verbose(p, 0)
}

/// [`summary`] as `tcpdump -n -v` (`verbose` 1) or `-vv` (2) prints it:
/// `IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto UDP (17),
/// length 46)\n    198.18.0.1.4242 > 198.18.0.2.9: UDP, length 18` (see
/// the module's notes for what stays in the plain form). 0 is [`summary`].
pub fn summary_verbose(p: &Dissected<'_>, verbose: u8) -> String {
    let mut s = String::new();
    let mut ck = Check::none();
    ck.verbose = verbose;
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
            ck.fragmented = frag_off != 0 || more;
            if let (Some(a), Some(b)) = (ip.src, ip.dst) {
                ck.addrs.extend_from_slice(&a.octets());
                ck.addrs.extend_from_slice(&b.octets());
            }
            match &ip.transport {
                Some(t) => {
                    let _ = write!(
                        s,
                        "IP {} > {}: {}",
                        with_port(src, t.src_port),
                        with_port(dst, t.dst_port),
                        transport(p, t, l4_len, false, &ck)
                    );
                }
                None if frag_off != 0 => {
                    // tcpdump 4.99: a later fragment shows only its protocol.
                    let _ = write!(s, "IP {src} > {dst}: ip-proto-{}", ip.proto.unwrap_or(0));
                }
                None => {
                    let _ = write!(s, "IP {src} > {dst}: [|ip]");
                }
            }
            if verbose > 0 {
                if let Some(h) = ipv4_verbose(p) {
                    s = format!("IP {h}\n    {}", &s[3..]);
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
            ck.v6 = true;
            if let (Some(a), Some(b)) = (ip.src, ip.dst) {
                ck.addrs.extend_from_slice(&a.octets());
                ck.addrs.extend_from_slice(&b.octets());
            }
            match &ip.transport {
                Some(t) if matches!(t.proto, 6 | 17 | 132 | 58) => {
                    let _ = write!(
                        s,
                        "IP6 {} > {}: {}",
                        with_port(src, t.src_port),
                        with_port(dst, t.dst_port),
                        transport(p, t, l4_len, true, &ck)
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
            if verbose > 0 {
                if let Some(h) = ipv6_verbose(p) {
                    s = format!("IP6 {h} {}", &s[4..]);
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
            let hw = p.data.get(p.l3_offset..p.l3_offset + 6);
            if let (true, true, Some(&[0, 1, 8, 0, 6, 4])) =
                (verbose > 0, s.starts_with("ARP, "), hw)
            {
                s = format!("ARP, Ethernet (len 6), IPv4 (len 4), {}", &s[5..]);
            }
        }
        Network::Other(_) => {
            // tcpdump shows the link header for what it cannot decode.
            s.push_str(&link_header(p));
            if s.is_empty() {
                let _ = write!(s, "length {}", p.wire_len);
            }
        }
    }
    s
}

/// How a line's time stamp is printed: tcpdump's `-t` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// `22:13:20.123456`: local time of day (tcpdump's default).
    #[default]
    Local,
    /// No time stamp (`-t`).
    None,
    /// `1700000000.123456`: seconds since the epoch (`-tt`).
    Epoch,
    /// ` 00:00:01.000001`: time since the previous packet (`-ttt`).
    SincePrevious,
    /// `2023-11-14 22:13:20.123456`: local date and time (`-tttt`).
    Date,
    /// ` 00:00:01.000001`: time since the first packet (`-ttttt`).
    SinceFirst,
}

impl TimeFormat {
    /// The form for `-t` given `count` times (0: the default).
    pub fn from_count(count: u8) -> TimeFormat {
        match count {
            0 => TimeFormat::Local,
            1 => TimeFormat::None,
            2 => TimeFormat::Epoch,
            3 => TimeFormat::SincePrevious,
            4 => TimeFormat::Date,
            _ => TimeFormat::SinceFirst,
        }
    }
}

/// Prints time stamps in one [`TimeFormat`], remembering the first and
/// previous packets for the relative forms.
#[derive(Clone, Debug, Default)]
pub struct Stamper {
    format: TimeFormat,
    first: Option<Timestamp>,
    prev: Option<Timestamp>,
}

fn micros(ts: Timestamp) -> i128 {
    i128::from(ts.sec) * 1_000_000 + i128::from(ts.nsec / 1000)
}

fn clock(out: &mut String, us: i128) {
    let secs = us.div_euclid(1_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        us.rem_euclid(1_000_000)
    );
}

impl Stamper {
    /// A stamper for `format`.
    pub fn new(format: TimeFormat) -> Stamper {
        Stamper {
            format,
            first: None,
            prev: None,
        }
    }

    /// The stamp for a packet at `ts`, followed by a space (empty for
    /// [`TimeFormat::None`]). Local forms use the C library's time zone
    /// (`localtime_r`: `TZ`, else `/etc/localtime`).
    pub fn stamp(&mut self, ts: Timestamp) -> String {
        let first = *self.first.get_or_insert(ts);
        let prev = self.prev.replace(ts).unwrap_or(ts);
        let mut s = String::with_capacity(32);
        let local = || {
            let off = pktio_host::iface::utc_offset(ts.sec as i64).unwrap_or(0);
            micros(ts) + i128::from(off) * 1_000_000
        };
        match self.format {
            TimeFormat::None => return s,
            TimeFormat::Local => clock(&mut s, local().rem_euclid(86_400 * 1_000_000)),
            TimeFormat::Epoch => {
                let _ = write!(s, "{}.{:06}", ts.sec, ts.nsec / 1000);
            }
            TimeFormat::SincePrevious | TimeFormat::SinceFirst => {
                let base = if self.format == TimeFormat::SinceFirst {
                    first
                } else {
                    prev
                };
                s.push(' ');
                clock(&mut s, (micros(ts) - micros(base)).max(0));
            }
            TimeFormat::Date => {
                let us = local();
                let day_us = 86_400 * 1_000_000;
                let date = Timestamp {
                    sec: (us.div_euclid(day_us) * 86_400).max(0) as u64,
                    nsec: 0,
                }
                .to_string();
                let _ = write!(s, "{} ", &date[..10]);
                clock(&mut s, us.rem_euclid(day_us));
            }
        }
        s.push(' ');
        s
    }
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
