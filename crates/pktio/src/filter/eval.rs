//! The reference evaluator: a filter's decision graph walked over the
//! captured bytes of a packet, with pcap's rules: a load beyond the
//! captured bytes rejects the packet, `len` is the length on the wire.
//!
//! The compilers emit the same graph ([`super::lower::Dag`]); the
//! differential test (`tests/filter_tcpdump.rs`) holds all three to what
//! `tcpdump -r` selects.

use super::lower::{Atom, Base, Dag, Next};

/// The field an atom loads, masked; `None` when a byte of it (or of the
/// IPv4 header length it depends on) was not captured.
pub(crate) fn load(data: &[u8], base: Base, off: u16, size: u8, mask: u32) -> Option<u32> {
    let start = match base {
        Base::Frame => usize::from(off),
        Base::L4v4(l3) => {
            let ihl = *data.get(usize::from(l3))?;
            usize::from(l3) + 4 * usize::from(ihl & 0x0f) + usize::from(off)
        }
    };
    let b = data.get(start..start + usize::from(size))?;
    let v = b.iter().fold(0u32, |v, &x| (v << 8) | u32::from(x));
    Some(v & mask)
}

/// Whether the graph accepts a packet of which `data` was captured, out of
/// `wire_len` bytes.
pub(crate) fn matches(dag: &Dag, data: &[u8], wire_len: usize) -> bool {
    let mut at = dag.root;
    loop {
        let n = match at {
            Next::Accept => return true,
            Next::Reject => return false,
            Next::Node(i) => &dag.nodes[i as usize],
        };
        let holds = match n.atom {
            Atom::Len(op, v) => op.holds(wire_len as u64, u64::from(v)),
            Atom::Field {
                base,
                off,
                size,
                mask,
                test,
            } => match load(data, base, off, size, mask) {
                Some(v) => test.holds(v),
                None => return false,
            },
        };
        at = if holds { n.hi } else { n.lo };
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
    fn a_load_past_the_captured_bytes_rejects_even_under_not() {
        let f = udp4(9, 4242);
        let short = &f[..36]; // source port present, destination port cut
        assert!(m("src port 9", short));
        assert!(!m("dst port 4242", short));
        assert!(!m("not dst port 4242", short));
        assert!(m("port 9", short), "the source port decides first");
        assert!(!m("port 4242", short));
        assert!(!m("ip", &f[..13]));
        assert!(!m("not ip", &f[..13]));
        assert!(m("ip or not ip", &f[..13]), "a tautology loads nothing");
        assert!(!m("ether dst 02:00:00:00:00:02", &f[..5]));
    }

    #[test]
    fn vlan_shifts_what_follows() {
        let mut tagged = udp4(9, 4242);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        assert!(!m("udp", &tagged));
        assert!(m("not ip", &tagged));
        assert!(m("vlan and udp dst port 4242", &tagged));
        assert!(m("vlan 100 and ip", &tagged));
        assert!(!m("vlan 101 and ip", &tagged));
        assert!(!m("vlan and vlan", &tagged));
        // `vlan` shifts the primitives after it even across `or`.
        assert!(!m("vlan or udp", &udp4(9, 4242)));
        assert!(m("udp or vlan", &udp4(9, 4242)));
    }

    #[test]
    fn later_fragments_match_the_protocol_not_the_ports() {
        let mut f = udp4(9, 4242);
        f[14 + 6..14 + 8].copy_from_slice(&0x0001u16.to_be_bytes());
        assert!(m("udp", &f));
        assert!(!m("port 9", &f));
        assert!(m("not port 9", &f));
    }
}
