//! The two things ethtool netlink does not carry: the driver name
//! (`ETHTOOL_GDRVINFO`) and the driver's private counters (`ethtool -S`:
//! `ETHTOOL_GSTRINGS` + `ETHTOOL_GSTATS`), read by the host layer
//! ([`pktio_host::ethtool::driver_stats`], which checks every count the
//! kernel writes back). The per-queue RX packet counters among them tell which
//! queue traffic arrives on for drivers without netdev queue statistics
//! (veth, ixgbe, …).
//!
//! The name → queue mapping is pure and tested on several drivers' names.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;

pub use pktio_host::ethtool::DriverStats;

/// Reads the driver name and every `ethtool -S` counter of `ifname`.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EOPNOTSUPP` when the driver has no
/// ethtool operations, and an error saying to read again when the driver's
/// number of counters kept changing or the kernel's reply was out of bounds.
pub fn read(ifname: &str) -> io::Result<DriverStats> {
    let sock = pktio_host::ethtool::control_socket()?;
    pktio_host::ethtool::driver_stats(sock.as_fd(), ifname)
}

/// Which RX queue an `ethtool -S` counter counts packets of, if any.
/// Knows the usual spellings: `rx_queue_3_packets` (virtio_net, ixgbe, ice,
/// igb), `rx-3.packets` (i40e), `rx3_packets` (mlx5), `queue_3_rx_cnt` (ena),
/// `[3]: rx_ucast_packets` (bnxt), and veth's `rx_queue_3_xdp_packets`.
/// Returns `(queue, preference)`: a lower preference wins when a driver has
/// several (veth's XDP counter only counts frames seen by XDP).
pub fn rx_queue_of(name: &str) -> Option<(u32, u8)> {
    fn num(s: &str) -> Option<(u32, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].parse().ok()?, &s[end..]))
    }
    if let Some(rest) = name.strip_prefix("rx_queue_") {
        let (q, tail) = num(rest)?;
        return match tail {
            "_packets" => Some((q, 0)),
            "_xdp_packets" => Some((q, 1)),
            _ => None,
        };
    }
    if let Some(rest) = name.strip_prefix("rx-") {
        let (q, tail) = num(rest)?;
        return (tail == ".packets").then_some((q, 0));
    }
    if let Some(rest) = name.strip_prefix("queue_") {
        let (q, tail) = num(rest)?;
        return (tail == "_rx_cnt").then_some((q, 0));
    }
    if let Some(rest) = name.strip_prefix('[') {
        let (q, tail) = num(rest)?;
        return (tail == "]: rx_ucast_packets").then_some((q, 0));
    }
    if let Some(rest) = name.strip_prefix("rx") {
        let (q, tail) = num(rest)?;
        return (tail == "_packets").then_some((q, 0));
    }
    None
}

/// Which RX queue an `ethtool -S` counter counts XDP_REDIRECT verdicts of:
/// `rx_queue_3_xdp_redirect` (veth), `rx_queue_3_xdp_redirects` (virtio_net),
/// `rx3_xdp_redirect` (mlx5).
pub fn rx_queue_redirect_of(name: &str) -> Option<u32> {
    let (rest, tails) = if let Some(r) = name.strip_prefix("rx_queue_") {
        (r, &["_xdp_redirect", "_xdp_redirects"][..])
    } else if let Some(r) = name.strip_prefix("rx") {
        (r, &["_xdp_redirect"][..])
    } else {
        return None;
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if end == 0 || !tails.contains(&&rest[end..]) {
        return None;
    }
    rest[..end].parse().ok()
}

/// XDP_REDIRECT verdicts per RX queue from `ethtool -S` counters.
pub fn rx_queue_redirects(stats: &[(String, u64)]) -> BTreeMap<u32, u64> {
    stats
        .iter()
        .filter_map(|(n, v)| rx_queue_redirect_of(n).map(|q| (q, *v)))
        .collect()
}

/// RX packets per queue from `ethtool -S` counters (empty when the driver
/// names none of them in a known way).
pub fn rx_queue_packets(stats: &[(String, u64)]) -> BTreeMap<u32, u64> {
    let mut best: BTreeMap<u32, (u8, u64)> = BTreeMap::new();
    for (name, v) in stats {
        if let Some((q, pref)) = rx_queue_of(name) {
            let e = best.entry(q).or_insert((pref, *v));
            if pref < e.0 {
                *e = (pref, *v);
            }
        }
    }
    best.into_iter().map(|(q, (_, v))| (q, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn queue_names_of_several_drivers() {
        assert_eq!(rx_queue_of("rx_queue_3_packets"), Some((3, 0)));
        assert_eq!(rx_queue_of("rx_queue_12_xdp_packets"), Some((12, 1)));
        assert_eq!(rx_queue_of("rx-7.packets"), Some((7, 0)));
        assert_eq!(rx_queue_of("rx5_packets"), Some((5, 0)));
        assert_eq!(rx_queue_of("queue_2_rx_cnt"), Some((2, 0)));
        assert_eq!(rx_queue_of("[4]: rx_ucast_packets"), Some((4, 0)));
        for no in [
            "rx_packets",
            "rx_queue_0_bytes",
            "rx_queue_0_drops",
            "tx_queue_0_packets",
            "rx5_bytes",
            "rx_csum_complete",
            "rx_",
        ] {
            assert_eq!(rx_queue_of(no), None, "{no}");
        }
    }

    #[test]
    fn veth_counters() {
        let m = rx_queue_packets(&s(&[
            ("peer_ifindex", 5),
            ("rx_queue_0_xdp_packets", 10),
            ("rx_queue_0_xdp_bytes", 640),
            ("rx_queue_0_drops", 0),
            ("rx_queue_1_xdp_packets", 90),
            ("tx_queue_0_xdp_xmit", 0),
        ]));
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(0, 10), (1, 90)]);
    }

    #[test]
    fn redirect_counters() {
        assert_eq!(rx_queue_redirect_of("rx_queue_1_xdp_redirect"), Some(1));
        assert_eq!(rx_queue_redirect_of("rx_queue_0_xdp_redirects"), Some(0));
        assert_eq!(rx_queue_redirect_of("rx12_xdp_redirect"), Some(12));
        assert_eq!(rx_queue_redirect_of("rx_queue_1_xdp_packets"), None);
        assert_eq!(rx_queue_redirect_of("rx_xdp_redirect"), None);
        let m = rx_queue_redirects(&s(&[
            ("rx_queue_0_xdp_redirect", 4),
            ("rx_queue_1_xdp_redirect", 0),
        ]));
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(0, 4), (1, 0)]);
    }

    #[test]
    fn plain_counter_wins_over_xdp_counter() {
        let m = rx_queue_packets(&s(&[
            ("rx_queue_0_xdp_packets", 1),
            ("rx_queue_0_packets", 50),
        ]));
        assert_eq!(m[&0], 50);
    }

    #[test]
    fn mlx5_counters() {
        let m = rx_queue_packets(&s(&[
            ("rx_packets", 1000),
            ("rx0_packets", 600),
            ("rx0_bytes", 1),
            ("rx1_packets", 400),
            ("tx0_packets", 3),
        ]));
        assert_eq!(m.len(), 2);
        assert_eq!(m[&1], 400);
    }
}
