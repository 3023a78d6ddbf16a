//! The words of the filter language that are values: numbers, addresses,
//! prefixes, MACs, protocol names; and the pcap words pktio refuses.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ast::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};

/// pcap-filter words outside pktio's subset, with what to do instead.
pub(crate) fn unsupported(w: &str) -> Option<&'static str> {
    Some(match w {
        "gateway" => "it needs host-name and MAC resolution; combine `ether host MAC` and `not host ADDR`",
        "broadcast" => "write `ether dst ff:ff:ff:ff:ff:ff`",
        "multicast" => "not in pktio's subset",
        "mask" => "write the network as CIDR: `net 198.18.0.0/15`",
        "inbound" | "outbound" | "ifname" | "on" | "rnr" | "rulenum" | "reason" | "rset"
        | "ruleset" | "srnr" | "subrulenum" | "action" | "ifindex" => {
            "direction and capture-device qualifiers are not in pktio's subset (an XDP program sees received packets only)"
        }
        "protochain" => "IPv6 extension headers are not walked; use `ip6 proto N` for the first next header",
        "rarp" | "aarp" | "atalk" | "decnet" | "iso" | "clnp" | "esis" | "isis" | "stp" | "ipx"
        | "netbeui" | "lat" | "moprc" | "mopdl" | "sca" | "l1" | "l2" | "iih" | "lsp" | "snp"
        | "csnp" | "psnp" => "this protocol is not in pktio's subset; use `ether proto N` with its EtherType",
        "ah" | "esp" | "igmp" | "igrp" | "pim" | "vrrp" | "carp" => {
            "this protocol name is not in pktio's subset; use `proto N` with its IP protocol number"
        }
        "mpls" | "pppoed" | "pppoes" | "geneve" | "vxlan" => {
            "encapsulations other than one VLAN tag are not in pktio's subset"
        }
        "fddi" | "tr" | "wlan" | "type" | "subtype" | "dir" | "llc" | "radio" | "atm" | "oam"
        | "oamf4" | "metac" | "bcc" | "sc" | "ilmic" | "connectmsg" | "metaconnect" | "lane"
        | "vpi" | "vci" | "fisu" | "lssu" | "msu" | "sio" | "opc" | "dpc" | "sls" | "hfisu"
        | "hlssu" | "hmsu" | "hsio" | "hopc" | "hdpc" | "hsls" | "link" | "slip" | "ppp" => {
            "only Ethernet frames are supported"
        }
        _ => return None,
    })
}

/// A parsed IPv4 value: the octets given (1 to 4) and an explicit prefix.
pub(crate) struct V4Value {
    pub(crate) addr: Ipv4Addr,
    pub(crate) parts: u8,
    pub(crate) prefix: Option<u8>,
}

pub(crate) fn parse_number(w: &str) -> Option<u64> {
    if let Some(hex) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) || w.len() > 19 {
        return None;
    }
    w.parse().ok()
}

pub(crate) fn split_prefix(w: &str) -> (&str, Option<&str>) {
    match w.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (w, None),
    }
}

pub(crate) fn parse_v4(w: &str) -> Option<Result<V4Value, String>> {
    let (addr, prefix) = split_prefix(w);
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() > 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // A single number is an IPv4 value only with a prefix (`net 10/8`).
    if parts.len() == 1 && prefix.is_none() {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        match p.parse::<u8>() {
            Ok(v) => *o = v,
            Err(_) => return Some(Err(format!("`{p}` is not an IPv4 octet (0..=255)"))),
        }
    }
    let prefix = match prefix {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= 32 => Some(n),
            _ => return Some(Err(format!("`/{p}` is not an IPv4 prefix length (0..=32)"))),
        },
    };
    Some(Ok(V4Value {
        addr: Ipv4Addr::from(octets),
        parts: parts.len() as u8,
        prefix,
    }))
}

pub(crate) fn parse_v6(w: &str) -> Option<Result<(Ipv6Addr, Option<u8>), String>> {
    if !w.contains(':') {
        return None;
    }
    let (addr, prefix) = split_prefix(w);
    let addr: Ipv6Addr = addr.parse().ok()?;
    let prefix = match prefix {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= 128 => Some(n),
            _ => {
                return Some(Err(format!(
                    "`/{p}` is not an IPv6 prefix length (0..=128)"
                )))
            }
        },
    };
    Some(Ok((addr, prefix)))
}

/// `02:00:c6:12:00:01`, `02-00-c6-12-00-01` or `0200.c612.0001`.
pub(crate) fn parse_mac(w: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let groups: Vec<&str> = if w.contains(':') {
        w.split(':').collect()
    } else if w.contains('-') {
        w.split('-').collect()
    } else if w.contains('.') {
        let g: Vec<&str> = w.split('.').collect();
        if g.len() != 3 || g.iter().any(|s| s.len() != 4) {
            return None;
        }
        let hex: String = g.concat();
        for (i, m) in mac.iter_mut().enumerate() {
            *m = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(mac);
    } else {
        return None;
    };
    if groups.len() != 6 {
        return None;
    }
    for (m, g) in mac.iter_mut().zip(groups) {
        if g.is_empty() || g.len() > 2 {
            return None;
        }
        *m = u8::from_str_radix(g, 16).ok()?;
    }
    Some(mac)
}

/// `\tcp`-style (or bare) IP protocol names.
pub(crate) fn ip_proto_name(w: &str) -> Option<u8> {
    Some(match w.trim_start_matches('\\') {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" => 58,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        _ => return None,
    })
}

/// `\ip`-style (or bare) EtherType names.
pub(crate) fn ether_proto_name(w: &str) -> Option<u16> {
    Some(match w.trim_start_matches('\\') {
        "ip" => ETH_P_IP,
        "ip6" => ETH_P_IPV6,
        "arp" => ETH_P_ARP,
        _ => return None,
    })
}

pub(crate) fn v4_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

pub(crate) fn v6_mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}
