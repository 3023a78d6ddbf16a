//! The legacy ethtool ioctl (`SIOCETHTOOL`), for what ethtool netlink does
//! not carry or what pktio needs without a generic-netlink socket: driver
//! info (`ethtool -i`), channel counts, the GRO and TSO switches
//! (`ethtool -K gro|tso`), and the driver's private counters
//! (`ethtool -S`).
//!
//! Every call takes the socket to make it on ([`control_socket`] makes one
//! in the calling thread's network namespace): the interface is looked up
//! in that socket's namespace. The `unsafe` ioctl is in `crate::sys`.
//!
//! # Trusting the kernel's counts
//! `ethtool -S` takes three calls: `ETHTOOL_GSSET_INFO` for the number of
//! counters, then `ETHTOOL_GSTRINGS` and `ETHTOOL_GSTATS`, each into a
//! buffer sized for that number. A driver's count can change in between (a
//! channel change mid-read). Older kernels then write their *current* count
//! and that many entries, whatever the buffer holds; 6.18 writes no
//! entries on a mismatch, so the values read as zeros. So each buffer has
//! headroom (checked again by the `sys` layer before each call), the count
//! the kernel wrote back is checked before any entry is read
//! (`check_reply`, pure and tested on crafted buffers), the count is asked
//! again after the values, and a changed count is read again (at most
//! 4 times) before a clear error. The reading logic takes the
//! ioctl as a closure, so it is tested against a fake kernel.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{AddressFamily, SocketType};

pub use crate::netlink::ethtool::Channels;
use crate::sys::{
    self, room, EthtoolChannels, EthtoolDrvinfo, EthtoolValue, ETHTOOL_GSSET_INFO, ETHTOOL_GSTATS,
    ETHTOOL_GSTRINGS, ETH_GSTRING_LEN, GSTATS_HDR, GSTATS_N_AT, GSTRINGS_HDR, GSTRINGS_LEN_AT,
    SSET_DATA_AT, SSET_MASK_AT,
};

/// `ETH_SS_STATS`: the string set of `ethtool -S`.
const ETH_SS_STATS: u32 = 1;

/// A datagram socket for interface ioctls in the calling thread's network
/// namespace.
///
/// # Errors
/// The `socket(2)` errno.
pub fn control_socket() -> io::Result<OwnedFd> {
    rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(io::Error::from)
}

/// `ETHTOOL_[GS]GRO`/`ETHTOOL_[GS]TSO`: the `data` the kernel left.
fn value_command(sock: BorrowedFd<'_>, ifname: &str, value: EthtoolValue) -> io::Result<u32> {
    let mut value = value;
    sys::ethtool(sock, ifname, &mut value)?;
    Ok(value.data)
}

/// `ETHTOOL_SGRO`: switches generic receive offload of `ifname` on or off
/// (what `ethtool -K <if> gro on|off` does).
///
/// # Errors
/// The ioctl's errno (`ENODEV`, `EPERM`, `EOPNOTSUPP`).
pub fn set_gro(sock: BorrowedFd<'_>, ifname: &str, on: bool) -> io::Result<()> {
    value_command(sock, ifname, EthtoolValue::set_gro(on)).map(|_| ())
}

/// `ETHTOOL_GGRO`: whether GRO is on for `ifname`.
///
/// # Errors
/// The ioctl's errno.
pub fn gro(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<bool> {
    value_command(sock, ifname, EthtoolValue::gro()).map(|v| v != 0)
}

/// `ETHTOOL_STSO`: switches TCP segmentation offload of `ifname` on or off
/// (what `ethtool -K <if> tso on|off` does).
///
/// # Errors
/// The ioctl's errno.
pub fn set_tso(sock: BorrowedFd<'_>, ifname: &str, on: bool) -> io::Result<()> {
    value_command(sock, ifname, EthtoolValue::set_tso(on)).map(|_| ())
}

/// `ETHTOOL_GTSO`: whether TSO is on for `ifname`.
///
/// # Errors
/// The ioctl's errno.
pub fn tso(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<bool> {
    value_command(sock, ifname, EthtoolValue::tso()).map(|v| v != 0)
}

/// `ETHTOOL_GCHANNELS`: channel (queue) counts and their maxima
/// (`ethtool -l`).
///
/// # Errors
/// The ioctl's errno (`EOPNOTSUPP` when the driver has no channels).
pub fn channels(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<Channels> {
    let mut ch = EthtoolChannels::new();
    sys::ethtool(sock, ifname, &mut ch)?;
    Ok(Channels {
        rx_max: ch.max_rx,
        tx_max: ch.max_tx,
        other_max: ch.max_other,
        combined_max: ch.max_combined,
        rx: ch.rx_count,
        tx: ch.tx_count,
        other: ch.other_count,
        combined: ch.combined_count,
    })
}

/// What `ETHTOOL_GDRVINFO` says about a device (`ethtool -i`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrvInfo {
    /// Driver name (`veth`, `virtio_net`, …).
    pub driver: String,
    /// Bus address, empty for virtual devices.
    pub bus_info: String,
}

/// `ETHTOOL_GDRVINFO`: the driver's name and bus address.
///
/// # Errors
/// The ioctl's errno (`ENODEV` for an unknown interface).
pub fn drvinfo(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<DrvInfo> {
    let mut info = EthtoolDrvinfo::new();
    sys::ethtool(sock, ifname, &mut info)?;
    Ok(DrvInfo {
        driver: c_str(&info.driver),
        bus_info: c_str(&info.bus_info),
    })
}

/// Most counters read (mlx5 with many channels has about 20 000).
const MAX_STATS: usize = 1 << 16;
/// Reads of a count that keeps changing before giving up.
const ATTEMPTS: usize = 4;

/// `ethtool -i` and `ethtool -S` for one interface ([`driver_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Driver name (`veth`, `virtio_net`, `mlx5_core`, …).
    pub driver: String,
    /// Bus address (`0000:03:00.0`), empty for virtual devices.
    pub bus_info: String,
    /// `ethtool -S` counters by name, in the driver's order.
    pub stats: Vec<(String, u64)>,
}

fn as_bytes(buf: &[u64]) -> Vec<u8> {
    buf.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn u32_at_bytes(b: &[u8], at: usize) -> Option<u32> {
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
    let Some(got) = u32_at_bytes(reply, count_at).filter(|_| reply.len() >= hdr) else {
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
    u32_at_bytes(reply, SSET_DATA_AT).unwrap_or(0) as usize
}

/// `ethtool -i` and `ethtool -S` for one interface of the namespace of
/// `sock`: the driver name and bus address (`ETHTOOL_GDRVINFO`), and every
/// driver counter (`ETHTOOL_GSSET_INFO`, `ETHTOOL_GSTRINGS`,
/// `ETHTOOL_GSTATS`), all through the `SIOCETHTOOL` ioctl.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EOPNOTSUPP` when the driver has no
/// ethtool operations, and an error saying to read again when the driver's
/// number of counters kept changing or the kernel's reply was out of bounds.
pub fn driver_stats(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<DriverStats> {
    let info = drvinfo(sock, ifname)?;
    Ok(DriverStats {
        driver: info.driver,
        bus_info: info.bus_info,
        stats: read_stats(ifname, |buf| sys::string_set_command(sock, ifname, buf))?,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let (count_at, hdr, entry) = match u32_at_bytes(&b, 0).unwrap() {
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
                let asked = u32_at_bytes(&b, at).unwrap() as usize;
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
            match u32_at_bytes(&bytes, 0).unwrap() {
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

    #[test]
    fn loopback_answers_or_fails_cleanly() {
        use std::os::fd::AsFd;
        let sock = control_socket().unwrap();
        let sock = sock.as_fd();
        // lo has no driver counters; whatever this kernel says about its
        // driver info, the answer is a value or an errno, never a panic.
        match driver_stats(sock, "lo") {
            Ok(d) => assert!(d.stats.len() <= MAX_STATS),
            Err(e) => assert!(e.raw_os_error().is_some(), "{e}"),
        }
        let e = driver_stats(sock, "pktio-no-such0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        let e = driver_stats(sock, "a-name-longer-than-ifnamsiz").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        let e = gro(sock, "bad\0name").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        assert_eq!(
            channels(sock, "pktio-no-such0").unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }
}
