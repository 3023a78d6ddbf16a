//! The two things ethtool netlink does not carry: the driver name
//! (`ETHTOOL_GDRVINFO`) and the driver's private counters (`ethtool -S`:
//! `ETHTOOL_GSTRINGS` + `ETHTOOL_GSTATS`), read with the `SIOCETHTOOL` ioctl.
//! The per-queue RX packet counters among them tell which queue traffic
//! arrives on for drivers without netdev queue statistics (veth, ixgbe, …).
//!
//! The name → queue mapping is pure and tested on several drivers' names.
//!
//! # Safety
//! The ioctl hands the kernel a pointer to a buffer through `ifr_data`. Each
//! buffer is a `Vec<u64>` (8-byte aligned) sized for the header plus the
//! count the kernel announced in `ETHTOOL_GDRVINFO`, and the header's count
//! field is set to that same count, so the kernel writes within it.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// `sizeof(struct ethtool_drvinfo)`.
const DRVINFO_LEN: usize = 196;
/// Offset of `n_stats` in `struct ethtool_drvinfo`.
const DRVINFO_N_STATS: usize = 4 + 5 * 32 + 12 + 4;

/// `ethtool -i` and `ethtool -S` for one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Driver name (`veth`, `virtio_net`, `mlx5_core`, …).
    pub driver: String,
    /// Bus address (`0000:03:00.0`), empty for virtual devices.
    pub bus_info: String,
    /// `ethtool -S` counters by name.
    pub stats: Vec<(String, u64)>,
}

fn socket() -> io::Result<OwnedFd> {
    rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(io::Error::from)
}

/// One `SIOCETHTOOL` call with `buf` as `ifr_data`.
fn ethtool_ioctl(fd: &OwnedFd, ifname: &str, buf: &mut [u64]) -> io::Result<()> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
    // SAFETY: `ifr` is a valid ifreq whose ifr_data points to `buf`, which
    // is live and mutable for the call and large enough for the command
    // (see the module's Safety paragraph).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn as_bytes(buf: &[u64]) -> Vec<u8> {
    buf.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Sets the leading `u32` fields of an ethtool command buffer.
fn set_u32s(buf: &mut [u64], fields: &[u32]) {
    let mut bytes = as_bytes(buf);
    for (i, f) in fields.iter().enumerate() {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&f.to_ne_bytes());
    }
    for (w, c) in buf.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        *w = u64::from_ne_bytes(a);
    }
}

/// Reads the driver name and every `ethtool -S` counter.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EOPNOTSUPP` when the driver has no
/// ethtool operations.
pub fn read(ifname: &str) -> io::Result<DriverStats> {
    let fd = socket()?;
    let mut info = vec![0u64; DRVINFO_LEN.div_ceil(8)];
    set_u32s(&mut info, &[ETHTOOL_GDRVINFO]);
    ethtool_ioctl(&fd, ifname, &mut info)?;
    let b = as_bytes(&info);
    let driver = c_str(&b[4..36]);
    let bus_info = c_str(&b[100..132]);
    let n = u32::from_ne_bytes([
        b[DRVINFO_N_STATS],
        b[DRVINFO_N_STATS + 1],
        b[DRVINFO_N_STATS + 2],
        b[DRVINFO_N_STATS + 3],
    ]) as usize;
    let mut out = DriverStats {
        driver,
        bus_info,
        stats: Vec::new(),
    };
    if n == 0 || n > 1 << 16 {
        return Ok(out);
    }
    let mut strings = vec![0u64; (12 + n * ETH_GSTRING_LEN).div_ceil(8)];
    set_u32s(&mut strings, &[ETHTOOL_GSTRINGS, ETH_SS_STATS, n as u32]);
    ethtool_ioctl(&fd, ifname, &mut strings)?;
    let mut values = vec![0u64; 1 + n];
    set_u32s(&mut values, &[ETHTOOL_GSTATS, n as u32]);
    ethtool_ioctl(&fd, ifname, &mut values)?;
    let sb = as_bytes(&strings);
    for i in 0..n {
        let name = c_str(&sb[12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN]);
        out.stats.push((name, values[1 + i]));
    }
    Ok(out)
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

    #[test]
    fn set_u32s_writes_native_fields() {
        let mut b = vec![0u64; 2];
        set_u32s(&mut b, &[0x1d, 7, 9]);
        let bytes = as_bytes(&b);
        assert_eq!(&bytes[0..4], &0x1du32.to_ne_bytes());
        assert_eq!(&bytes[4..8], &7u32.to_ne_bytes());
        assert_eq!(&bytes[8..12], &9u32.to_ne_bytes());
    }
}
