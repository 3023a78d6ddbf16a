//! The two things ethtool netlink does not carry: the driver name
//! (`ETHTOOL_GDRVINFO`) and the driver's private counters (`ethtool -S`:
//! `ETHTOOL_GSTRINGS` + `ETHTOOL_GSTATS`), read with the `SIOCETHTOOL` ioctl.
//! The per-queue RX packet counters among them tell which queue traffic
//! arrives on for drivers without netdev queue statistics (veth, ixgbe, …).
//!
//! The name → queue mapping is pure and tested on several drivers' names.
//!
//! # Trusting the kernel's counts
//! `ethtool -S` takes three calls: `ETHTOOL_GSSET_INFO` for the number of
//! counters, then `ETHTOOL_GSTRINGS` and `ETHTOOL_GSTATS`, each into a
//! buffer sized for that number. A driver's count can change in between (a
//! channel change mid-read). Older kernels then write their *current* count
//! and that many entries, whatever the buffer holds; 6.18 writes no
//! entries on a mismatch, so the values read as zeros. So each buffer has headroom
//! ([`room`]), the count the kernel wrote back is checked before any entry
//! is read ([`check_reply`], pure and tested on crafted buffers), the count
//! is asked again after the values, and a changed count is read again (at
//! most [`ATTEMPTS`] times) before a clear error.
//!
//! # Safety
//! The ioctl hands the kernel a pointer to a buffer through `ifr_data`. Each
//! buffer is a `Vec<u64>` (8-byte aligned) sized for its header plus
//! [`room`]`(n)` entries, where `n` is the count `ETHTOOL_GSSET_INFO` just
//! gave and the header's count field is set to `n`: a kernel that honours
//! the field writes `n` entries, an older one its current count, which fits
//! unless the count more than doubled between two calls (a reply claiming
//! more than the room is refused, never read).
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
/// `sizeof(struct ethtool_drvinfo)`.
const DRVINFO_LEN: usize = 196;
/// `struct ethtool_sset_info`: cmd, reserved, `sset_mask` (u64 at 8), then
/// one u32 count per bit set in the mask the kernel writes back (at 16).
const SSET_MASK_AT: usize = 8;
const SSET_DATA_AT: usize = 16;
/// `struct ethtool_gstrings`: cmd, string_set, len (at 8); names from 12.
const GSTRINGS_HDR: usize = 12;
const GSTRINGS_LEN_AT: usize = 8;
/// `struct ethtool_stats`: cmd, n_stats (at 4); u64 values from 8.
const GSTATS_HDR: usize = 8;
const GSTATS_N_AT: usize = 4;
/// Most counters read (mlx5 with many channels has about 20 000).
const MAX_STATS: usize = 1 << 16;
/// Reads of a count that keeps changing before giving up.
const ATTEMPTS: usize = 4;

/// Entries a buffer for `n` announced counters holds: twice as many plus
/// 256, so an older kernel writing a count that grew meanwhile stays inside.
fn room(n: usize) -> usize {
    2 * n + 256
}

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
    // is live and mutable for the call and sized for the command with
    // headroom (see the module's Safety paragraph).
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

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
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

/// What the count field of a `GSTRINGS` / `GSTATS` reply says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The count asked for: that many entries follow the header.
    Ok,
    /// Another count: the driver's changed since `GSSET_INFO` (older
    /// kernels write the new count and entries; 6.18 writes no entries):
    /// ask again.
    Changed { asked: usize, got: usize },
    /// More entries than the buffer holds (or no room for the header):
    /// never read.
    Overflow { got: usize, room: usize },
}

/// Checks the count the kernel wrote back into a reply before any entry is
/// read: `reply` is the whole buffer, the count is the u32 at `count_at`,
/// entries of `entry` bytes follow a `hdr`-byte header, and `asked` is the
/// count the request carried.
fn check_reply(reply: &[u8], count_at: usize, hdr: usize, entry: usize, asked: usize) -> Reply {
    let room = reply.len().saturating_sub(hdr) / entry.max(1);
    let Some(got) = u32_at(reply, count_at).filter(|_| reply.len() >= hdr) else {
        return Reply::Overflow { got: 0, room };
    };
    let got = got as usize;
    if got > room {
        Reply::Overflow { got, room }
    } else if got != asked {
        Reply::Changed { asked, got }
    } else {
        Reply::Ok
    }
}

/// The `ETH_SS_STATS` count in an `ETHTOOL_GSSET_INFO` reply: 0 when the
/// kernel cleared the mask bit (the driver has no such counters).
fn sset_stats_count(reply: &[u8]) -> usize {
    let mask = reply
        .get(SSET_MASK_AT..SSET_MASK_AT + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes);
    if mask & (1 << ETH_SS_STATS) == 0 {
        return 0;
    }
    u32_at(reply, SSET_DATA_AT).unwrap_or(0) as usize
}

/// Reads the driver name and every `ethtool -S` counter.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EOPNOTSUPP` when the driver has no
/// ethtool operations, and an error saying to read again when the driver's
/// number of counters kept changing or the kernel's reply was out of bounds.
pub fn read(ifname: &str) -> io::Result<DriverStats> {
    let fd = socket()?;
    let mut info = vec![0u64; DRVINFO_LEN.div_ceil(8)];
    set_u32s(&mut info, &[ETHTOOL_GDRVINFO]);
    ethtool_ioctl(&fd, ifname, &mut info)?;
    let b = as_bytes(&info);
    Ok(DriverStats {
        driver: c_str(&b[4..36]),
        bus_info: c_str(&b[100..132]),
        stats: read_stats(ifname, |buf| ethtool_ioctl(&fd, ifname, buf))?,
    })
}

/// `ethtool -S` through `ioctl` (the `SIOCETHTOOL` call, or a fake kernel
/// in tests): count, names, values, count again; read again while the
/// count changes, at most [`ATTEMPTS`] times.
fn read_stats(
    ifname: &str,
    mut ioctl: impl FnMut(&mut [u64]) -> io::Result<()>,
) -> io::Result<Vec<(String, u64)>> {
    fn count(ioctl: &mut dyn FnMut(&mut [u64]) -> io::Result<()>) -> io::Result<usize> {
        let mut sset = vec![0u64; (SSET_DATA_AT + 4).div_ceil(8)];
        set_u32s(&mut sset, &[ETHTOOL_GSSET_INFO]);
        sset[SSET_MASK_AT / 8] = 1 << ETH_SS_STATS;
        match ioctl(&mut sset) {
            Ok(()) => Ok(sset_stats_count(&as_bytes(&sset))),
            // No get_sset_count: no driver counters.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(0),
            Err(e) => Err(e),
        }
    }
    let out_of_bounds = |what: &str, got: usize, room: usize| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the kernel's {what} reply for {ifname} claims {got} counters, more than the \
                 {room} asked room for; not read (the driver's counter count jumped: run again)"
            ),
        )
    };
    let mut last = (0, 0);
    for _ in 0..ATTEMPTS {
        let n = count(&mut ioctl)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > MAX_STATS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the driver of {ifname} reports {n} counters, more than the {MAX_STATS} \
                     pktio reads; use `ethtool -S {ifname}`"
                ),
            ));
        }
        let room = room(n);
        let mut strings = vec![0u64; (GSTRINGS_HDR + room * ETH_GSTRING_LEN).div_ceil(8)];
        set_u32s(&mut strings, &[ETHTOOL_GSTRINGS, ETH_SS_STATS, n as u32]);
        ioctl(&mut strings)?;
        let sb = as_bytes(&strings);
        match check_reply(&sb, GSTRINGS_LEN_AT, GSTRINGS_HDR, ETH_GSTRING_LEN, n) {
            Reply::Ok => {}
            Reply::Changed { asked, got } => {
                last = (asked, got);
                continue;
            }
            Reply::Overflow { got, room } => return Err(out_of_bounds("names", got, room)),
        }
        let mut values = vec![0u64; (GSTATS_HDR / 8) + room];
        set_u32s(&mut values, &[ETHTOOL_GSTATS, n as u32]);
        ioctl(&mut values)?;
        match check_reply(&as_bytes(&values), GSTATS_N_AT, GSTATS_HDR, 8, n) {
            Reply::Ok => {}
            Reply::Changed { asked, got } => {
                last = (asked, got);
                continue;
            }
            Reply::Overflow { got, room } => return Err(out_of_bounds("values", got, room)),
        }
        // The same count after the values: names and values describe the
        // same counters (a kernel that keeps the count but writes zeros on
        // a change is caught here too).
        let after = count(&mut ioctl)?;
        if after != n {
            last = (n, after);
            continue;
        }
        return Ok((0..n)
            .map(|i| {
                let at = GSTRINGS_HDR + i * ETH_GSTRING_LEN;
                (
                    c_str(&sb[at..at + ETH_GSTRING_LEN]),
                    values[GSTATS_HDR / 8 + i],
                )
            })
            .collect());
    }
    Err(io::Error::other(format!(
        "the driver of {ifname} kept changing its number of counters ({} asked, {} reported, \
         {ATTEMPTS} tries); read again once its channels or queues stop changing",
        last.0, last.1
    )))
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

    /// A reply buffer of `words` u64s whose u32 count field at `at` says `got`.
    fn reply(words: usize, at: usize, got: u32) -> Vec<u8> {
        let mut b = vec![0u8; words * 8];
        b[at..at + 4].copy_from_slice(&got.to_ne_bytes());
        b
    }

    #[test]
    fn reply_counts_are_checked_before_reading() {
        // A values buffer asked for 10 with room for 20: header + 20 u64s.
        let v = |got| check_reply(&reply(21, GSTATS_N_AT, got), GSTATS_N_AT, GSTATS_HDR, 8, 10);
        assert_eq!(v(10), Reply::Ok);
        assert_eq!(v(8), Reply::Changed { asked: 10, got: 8 }, "shrank");
        assert_eq!(v(12), Reply::Changed { asked: 10, got: 12 }, "grew");
        assert_eq!(
            v(20),
            Reply::Changed { asked: 10, got: 20 },
            "grew to the room"
        );
        assert_eq!(v(0), Reply::Changed { asked: 10, got: 0 }, "zero (6.18)");
        assert_eq!(
            v(21),
            Reply::Overflow { got: 21, room: 20 },
            "past the room"
        );
        let huge = u32::MAX as usize;
        assert_eq!(
            v(u32::MAX),
            Reply::Overflow {
                got: huge,
                room: 20
            },
            "huge"
        );

        // A names buffer: 12-byte header, then 32-byte names.
        let words = (GSTRINGS_HDR + 4 * ETH_GSTRING_LEN).div_ceil(8);
        let n = |got| {
            let b = reply(words, GSTRINGS_LEN_AT, got);
            check_reply(&b, GSTRINGS_LEN_AT, GSTRINGS_HDR, ETH_GSTRING_LEN, 3)
        };
        assert_eq!(n(3), Reply::Ok);
        assert_eq!(n(4), Reply::Changed { asked: 3, got: 4 });
        assert_eq!(n(5), Reply::Overflow { got: 5, room: 4 });

        // No room even for the header.
        assert_eq!(
            check_reply(&[0u8; 8], GSTRINGS_LEN_AT, GSTRINGS_HDR, ETH_GSTRING_LEN, 0),
            Reply::Overflow { got: 0, room: 0 }
        );
    }

    #[test]
    fn sset_info_count() {
        let mut b = vec![0u8; 24];
        assert_eq!(sset_stats_count(&b), 0, "mask bit cleared: no counters");
        b[SSET_MASK_AT..SSET_MASK_AT + 8].copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
        b[SSET_DATA_AT..SSET_DATA_AT + 4].copy_from_slice(&42u32.to_ne_bytes());
        assert_eq!(sset_stats_count(&b), 42);
        assert_eq!(sset_stats_count(&b[..12]), 0, "short reply");
    }

    /// A driver whose counter count is `counts[call]` at each ioctl (the
    /// last one from then on). `honours`: a 6.18 kernel (a request whose
    /// count differs gets a zero count and no entries); else an older one
    /// (writes its current count and entries, whatever was asked).
    struct FakeKernel {
        counts: Vec<usize>,
        calls: usize,
        honours: bool,
    }

    impl FakeKernel {
        fn new(counts: &[usize], honours: bool) -> Self {
            FakeKernel {
                counts: counts.to_vec(),
                calls: 0,
                honours,
            }
        }

        fn ioctl(&mut self, buf: &mut [u64]) -> io::Result<()> {
            let n = self.counts[self.calls.min(self.counts.len() - 1)];
            self.calls += 1;
            let mut b = as_bytes(buf);
            let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| {
                // An overflow here is what the headroom must prevent.
                assert!(at + v.len() <= b.len(), "the kernel writes past the buffer");
                b[at..at + v.len()].copy_from_slice(v);
            };
            let (count_at, hdr, entry) = match u32_at(&b, 0).unwrap() {
                ETHTOOL_GSSET_INFO => {
                    put(&mut b, SSET_MASK_AT, &(1u64 << ETH_SS_STATS).to_ne_bytes());
                    put(&mut b, SSET_DATA_AT, &(n as u32).to_ne_bytes());
                    (None, 0, 0)
                }
                ETHTOOL_GSTRINGS => (Some(GSTRINGS_LEN_AT), GSTRINGS_HDR, ETH_GSTRING_LEN),
                ETHTOOL_GSTATS => (Some(GSTATS_N_AT), GSTATS_HDR, 8),
                c => panic!("unexpected ethtool command {c:#x}"),
            };
            if let Some(at) = count_at {
                let asked = u32_at(&b, at).unwrap() as usize;
                let write = if self.honours && asked != n { 0 } else { n };
                put(&mut b, at, &(write as u32).to_ne_bytes());
                for i in 0..write {
                    let e = if entry == 8 {
                        (1000 + i as u64).to_ne_bytes().to_vec()
                    } else {
                        let mut name = format!("stat_{i}").into_bytes();
                        name.resize(ETH_GSTRING_LEN, 0);
                        name
                    };
                    put(&mut b, hdr + i * entry, &e);
                }
            }
            for (w, c) in buf.iter_mut().zip(b.chunks_exact(8)) {
                *w = u64::from_ne_bytes(c.try_into().unwrap());
            }
            Ok(())
        }

        fn read(&mut self) -> io::Result<Vec<(String, u64)>> {
            read_stats("eth9", |b| self.ioctl(b))
        }
    }

    fn stats_of(n: usize) -> Vec<(String, u64)> {
        (0..n)
            .map(|i| (format!("stat_{i}"), 1000 + i as u64))
            .collect()
    }

    #[test]
    fn a_stable_count_reads_in_four_calls() {
        let mut k = FakeKernel::new(&[3], false);
        assert_eq!(k.read().unwrap(), stats_of(3));
        assert_eq!(k.calls, 4, "count, names, values, count");
    }

    #[test]
    fn a_count_that_grows_mid_read_is_read_again() {
        // Older kernel: 4 announced, then 264 written (a channel change):
        // the headroom holds them (the fake asserts it), and the mismatch
        // makes it read again rather than pair 4 names with 264 values.
        assert_eq!(room(4), 264);
        for honours in [false, true] {
            let mut k = FakeKernel::new(&[4, 264], honours);
            assert_eq!(k.read().unwrap(), stats_of(264), "honours {honours}");
        }
    }

    #[test]
    fn a_count_that_shrinks_or_changes_after_the_values_is_read_again() {
        let mut k = FakeKernel::new(&[6, 4], false);
        assert_eq!(k.read().unwrap(), stats_of(4));
        // Names and values agree, but the count moved right after.
        let mut k = FakeKernel::new(&[5, 5, 5, 7], true);
        assert_eq!(k.read().unwrap(), stats_of(7));
    }

    #[test]
    fn a_6_18_mismatch_is_not_read_as_zeros() {
        // 6.18 writes a zero count and nothing else on a mismatch.
        let mut k = FakeKernel::new(&[5, 6, 6], true);
        let got = k.read().unwrap();
        assert_eq!(got, stats_of(6));
        assert!(got.iter().all(|(_, v)| *v != 0));
    }

    #[test]
    fn a_count_that_never_settles_is_a_clear_error() {
        let flapping: Vec<usize> = (0..64).map(|i| 4 + i % 2).collect();
        let e = FakeKernel::new(&flapping, false).read().unwrap_err();
        assert!(e.to_string().contains("kept changing"), "{e}");
        assert!(e.to_string().contains("read again"), "{e}");
    }

    #[test]
    fn no_or_too_many_counters() {
        assert_eq!(FakeKernel::new(&[0], false).read().unwrap(), vec![]);
        let e = FakeKernel::new(&[MAX_STATS + 1], false).read().unwrap_err();
        assert!(e.to_string().contains("ethtool -S eth9"), "{e}");
        // A reply claiming more than the room is refused, never read.
        let e = read_stats("eth9", |b| {
            let mut bytes = as_bytes(b);
            match u32_at(&bytes, 0).unwrap() {
                ETHTOOL_GSSET_INFO => {
                    bytes[SSET_MASK_AT..SSET_MASK_AT + 8]
                        .copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
                    bytes[SSET_DATA_AT..SSET_DATA_AT + 4].copy_from_slice(&2u32.to_ne_bytes());
                }
                _ => bytes[GSTRINGS_LEN_AT..GSTRINGS_LEN_AT + 4]
                    .copy_from_slice(&u32::MAX.to_ne_bytes()),
            }
            for (w, c) in b.iter_mut().zip(bytes.chunks_exact(8)) {
                *w = u64::from_ne_bytes(c.try_into().unwrap());
            }
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("claims 4294967295 counters"), "{e}");
        let unsupported = read_stats("eth9", |_| {
            Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        });
        assert_eq!(unsupported.unwrap(), vec![]);
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
