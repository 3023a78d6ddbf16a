//! The only `unsafe` code of pktio-host: the `SIOCETHTOOL` ioctl, and two
//! C-library calls that hand back pointers (`getifaddrs(3)`,
//! `localtime_r(3)`).
//!
//! # Safety
//!
//! `getifaddrs` returns a list that stays valid until the one
//! `freeifaddrs` in the same function; nothing borrowed from it outlives
//! that call. `localtime_r` writes into a local `struct tm`.
//!
//! `ioctl(SIOCETHTOOL)` hands the kernel a `struct ifreq` whose `ifr_data`
//! points at a command buffer, and the kernel reads and writes as much of
//! that buffer as the command word in its first four bytes calls for.
//! [`ethtool_ioctl`] therefore is an `unsafe fn`: its caller vouches for
//! the buffer. Two doors lead to it:
//! - [`ethtool`] for the fixed-size commands: the buffer is a value of an
//!   [`EthtoolCommand`] type, a `#[repr(C)]` uapi struct (size asserted at
//!   compile time) that can only be built with a command word whose buffer
//!   it is;
//! - [`string_set_command`] for the `ethtool -S` commands, whose replies
//!   have a variable length: the buffer is checked against the count it
//!   carries (room for [`room`]`(n)` entries when it asks for `n`) before
//!   the call. A kernel that honours the count writes `n` entries; an older
//!   one writes its *current* count, which fits unless the driver's count
//!   more than doubled between two calls.
//!
//! uapi: <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/ethtool.h?h=v6.18>
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `ETHTOOL_GSTRINGS`: the names of a string set.
pub(crate) const ETHTOOL_GSTRINGS: u32 = 0x1b;
/// `ETHTOOL_GSTATS`: the driver's private counters.
pub(crate) const ETHTOOL_GSTATS: u32 = 0x1d;
/// `ETHTOOL_GSSET_INFO`: the sizes of string sets.
pub(crate) const ETHTOOL_GSSET_INFO: u32 = 0x37;
/// `ETH_GSTRING_LEN`: bytes per name.
pub(crate) const ETH_GSTRING_LEN: usize = 32;
/// `struct ethtool_sset_info`: cmd, reserved, `sset_mask` (u64 at 8), then
/// one u32 count per bit set in the mask the kernel writes back (at 16).
pub(crate) const SSET_MASK_AT: usize = 8;
/// Where the counts of `struct ethtool_sset_info` start.
pub(crate) const SSET_DATA_AT: usize = 16;
/// `struct ethtool_gstrings`: cmd, string_set, len (at 8); names from 12.
pub(crate) const GSTRINGS_HDR: usize = 12;
/// Where the count of `struct ethtool_gstrings` is.
pub(crate) const GSTRINGS_LEN_AT: usize = 8;
/// `struct ethtool_stats`: cmd, n_stats (at 4); u64 values from 8.
pub(crate) const GSTATS_HDR: usize = 8;
/// Where the count of `struct ethtool_stats` is.
pub(crate) const GSTATS_N_AT: usize = 4;

/// Entries a `GSTRINGS`/`GSTATS` buffer for `n` announced counters holds:
/// twice as many plus 256, so an older kernel writing a count that grew
/// meanwhile stays inside.
pub(crate) fn room(n: usize) -> usize {
    n.saturating_mul(2).saturating_add(256)
}

/// `ETHTOOL_GDRVINFO`: driver information.
const ETHTOOL_GDRVINFO: u32 = 0x03;
/// `ETHTOOL_GTSO`: get the TSO flags.
const ETHTOOL_GTSO: u32 = 0x1e;
/// `ETHTOOL_STSO`: set the TSO flags (`NETIF_F_ALL_TSO`: TCPv4, TCPv6, ECN
/// and mangle-id segmentation).
const ETHTOOL_STSO: u32 = 0x1f;
/// `ETHTOOL_GGRO`: get the GRO flag.
const ETHTOOL_GGRO: u32 = 0x2b;
/// `ETHTOOL_SGRO`: set the GRO flag.
const ETHTOOL_SGRO: u32 = 0x2c;
/// `ETHTOOL_GCHANNELS`: channel (queue) counts.
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_value`: the buffer of `ETHTOOL_[GS]GRO` and
/// `ETHTOOL_[GS]TSO`.
#[repr(C)]
pub(crate) struct EthtoolValue {
    cmd: u32,
    /// The flag: the value to set, or the value read.
    pub(crate) data: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolValue>() == 8);

impl EthtoolValue {
    /// `ETHTOOL_GGRO`.
    pub(crate) fn gro() -> Self {
        EthtoolValue {
            cmd: ETHTOOL_GGRO,
            data: 0,
        }
    }
    /// `ETHTOOL_SGRO`.
    pub(crate) fn set_gro(on: bool) -> Self {
        EthtoolValue {
            cmd: ETHTOOL_SGRO,
            data: u32::from(on),
        }
    }
    /// `ETHTOOL_GTSO`.
    pub(crate) fn tso() -> Self {
        EthtoolValue {
            cmd: ETHTOOL_GTSO,
            data: 0,
        }
    }
    /// `ETHTOOL_STSO`.
    pub(crate) fn set_tso(on: bool) -> Self {
        EthtoolValue {
            cmd: ETHTOOL_STSO,
            data: u32::from(on),
        }
    }
}

/// `struct ethtool_channels`: the buffer of `ETHTOOL_GCHANNELS`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct EthtoolChannels {
    cmd: u32,
    pub(crate) max_rx: u32,
    pub(crate) max_tx: u32,
    pub(crate) max_other: u32,
    pub(crate) max_combined: u32,
    pub(crate) rx_count: u32,
    pub(crate) tx_count: u32,
    pub(crate) other_count: u32,
    pub(crate) combined_count: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolChannels>() == 36);

impl EthtoolChannels {
    /// `ETHTOOL_GCHANNELS`.
    pub(crate) fn new() -> Self {
        EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..Default::default()
        }
    }
}

/// `struct ethtool_drvinfo` (196 bytes): the buffer of `ETHTOOL_GDRVINFO`.
#[repr(C)]
pub(crate) struct EthtoolDrvinfo {
    cmd: u32,
    pub(crate) driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    pub(crate) bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolDrvinfo>() == 196);

impl EthtoolDrvinfo {
    /// `ETHTOOL_GDRVINFO`.
    pub(crate) fn new() -> Self {
        EthtoolDrvinfo {
            cmd: ETHTOOL_GDRVINFO,
            driver: [0; 32],
            version: [0; 32],
            fw_version: [0; 32],
            bus_info: [0; 32],
            erom_version: [0; 32],
            reserved2: [0; 12],
            n_priv_flags: 0,
            n_stats: 0,
            testinfo_len: 0,
            eedump_len: 0,
            regdump_len: 0,
        }
    }
}

// SAFETY: `cmd` is private to this module and set only by the constructors
// above to ETHTOOL_[GS]GRO or ETHTOOL_[GS]TSO, whose buffer is a
// `struct ethtool_value`.
unsafe impl EthtoolCommand for EthtoolValue {}
// SAFETY: `cmd` is private to this module and set only to
// ETHTOOL_GCHANNELS, whose buffer is a `struct ethtool_channels`.
unsafe impl EthtoolCommand for EthtoolChannels {}
// SAFETY: `cmd` is private to this module and set only to
// ETHTOOL_GDRVINFO, whose buffer is a `struct ethtool_drvinfo`.
unsafe impl EthtoolCommand for EthtoolDrvinfo {}

/// A complete, fixed-size `SIOCETHTOOL` command buffer.
///
/// # Safety
///
/// Every value of the implementing type starts with the command word of a
/// command whose whole buffer (everything the kernel reads or writes for
/// it) is this type: implement it only for `#[repr(C)]` uapi structs whose
/// command word is private to this module and set by their constructors.
pub(crate) unsafe trait EthtoolCommand {}

/// `ioctl(sock, SIOCETHTOOL)` with `data` as the command buffer: the
/// interface `ifname` is looked up in the network namespace of `sock`.
///
/// `ENODEV`, without calling the kernel, for a name that is empty, too long
/// for `IFNAMSIZ` or holds a NUL.
///
/// # Safety
///
/// `data` must hold the command word of an ethtool command in its first four
/// bytes and be large enough for everything the kernel reads and writes for
/// that command (module Safety).
pub(crate) unsafe fn ethtool_ioctl<T: ?Sized>(
    sock: BorrowedFd<'_>,
    ifname: &str,
    data: &mut T,
) -> io::Result<()> {
    // SAFETY: ifreq is plain data (a char array and a union of integers,
    // sockaddrs and pointers); all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= ifr.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (data as *mut T).cast();
    // The command buffer is live, exclusively borrowed for the call and
    // sized for its command (this function's contract).
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name; the kernel reads/writes only `data`.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(SIOCETHTOOL)` with a fixed-size command buffer.
pub(crate) fn ethtool<T: EthtoolCommand>(
    sock: BorrowedFd<'_>,
    ifname: &str,
    data: &mut T,
) -> io::Result<()> {
    // SAFETY: an `EthtoolCommand` value is the whole buffer of the command
    // its first word names (the trait's contract).
    unsafe { ethtool_ioctl(sock, ifname, data) }
}

/// The native-endian `u32` at byte `at` of a command buffer.
pub(crate) fn u32_at(buf: &[u64], at: usize) -> Option<u32> {
    let w = *buf.get(at / 8)?;
    let b = w.to_ne_bytes();
    let i = at % 8;
    (i <= 4).then(|| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

/// Bytes an `ethtool -S` command buffer must hold for what it asks, or
/// `None` for any other command word.
fn needed(buf: &[u64]) -> Option<usize> {
    match u32_at(buf, 0)? {
        ETHTOOL_GSSET_INFO => {
            let mask = *buf.get(SSET_MASK_AT / 8)?;
            Some(SSET_DATA_AT + 4 * mask.count_ones() as usize)
        }
        ETHTOOL_GSTRINGS => {
            let n = u32_at(buf, GSTRINGS_LEN_AT)? as usize;
            room(n)
                .checked_mul(ETH_GSTRING_LEN)?
                .checked_add(GSTRINGS_HDR)
        }
        ETHTOOL_GSTATS => {
            let n = u32_at(buf, GSTATS_N_AT)? as usize;
            room(n).checked_mul(8)?.checked_add(GSTATS_HDR)
        }
        _ => None,
    }
}

/// `ioctl(SIOCETHTOOL)` for one of the `ethtool -S` commands
/// (`ETHTOOL_GSSET_INFO`, `ETHTOOL_GSTRINGS`, `ETHTOOL_GSTATS`) with `buf`
/// as the command buffer, its header filled in by the caller.
///
/// `EINVAL`, without calling the kernel, for another command word or a
/// buffer smaller than its header plus [`room`]`(n)` entries for the count
/// `n` it asks for (module Safety).
pub(crate) fn string_set_command(
    sock: BorrowedFd<'_>,
    ifname: &str,
    buf: &mut [u64],
) -> io::Result<()> {
    match needed(buf) {
        Some(n) if n <= std::mem::size_of_val(buf) => {}
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
    // SAFETY: `buf` carries one of the three commands and is large enough
    // for it, with headroom for a count that changed (checked just above).
    unsafe { ethtool_ioctl(sock, ifname, buf) }
}

/// One IPv4 or IPv6 address of an interface, as `getifaddrs(3)` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IfAddr {
    pub(crate) name: String,
    /// `if_nametoindex(name)`: 0 if the interface went away meanwhile.
    pub(crate) index: u32,
    pub(crate) addr: IpAddr,
}

/// `getifaddrs(3)`: every IPv4 and IPv6 address of every interface in the
/// calling thread's network namespace (other families are skipped).
pub(crate) fn ifaddrs() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned,
        // which stays valid until freeifaddrs below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: `ifa_addr` is non-null and points to a sockaddr whose family
        // field is valid.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let addr = match family {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so the sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so the sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::from(sin6.sin6_addr.s6_addr)
            }
            _ => continue,
        };
        // SAFETY: `ifa_name` is a non-null NUL-terminated string owned by the
        // list, read before the list is freed.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: `name` is a valid NUL-terminated C string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        out.push(IfAddr {
            name: name.to_string_lossy().into_owned(),
            index,
            addr,
        });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly
    // once; nothing borrowed from the list outlives this point.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `localtime_r(3)`: the local time zone's offset from UTC, in seconds, at
/// `sec` seconds after the epoch (`tm_gmtoff`; the zone is `TZ`, else
/// `/etc/localtime`). `None` if the C library cannot convert it.
pub(crate) fn utc_offset(sec: i64) -> Option<i64> {
    let t: libc::time_t = sec;
    // SAFETY: `tm` is plain data; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types;
    // localtime_r is the reentrant form and keeps no pointer to them.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        None
    } else {
        Some(tm.tm_gmtoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn header(words: usize, fields: &[u32]) -> Vec<u64> {
        let mut bytes = vec![0u8; words * 8];
        for (i, f) in fields.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&f.to_ne_bytes());
        }
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn a_buffer_without_headroom_is_refused_before_the_call() {
        const ETH_SS_STATS: u32 = 1;
        const ETHTOOL_GDRVINFO: u32 = 3;
        let sock = crate::ethtool::control_socket().unwrap();
        let sock = sock.as_fd();
        // 3 names asked for, room for only 3: refused (EINVAL), never passed on.
        let mut small = header(
            (GSTRINGS_HDR + 3 * ETH_GSTRING_LEN).div_ceil(8),
            &[ETHTOOL_GSTRINGS, ETH_SS_STATS, 3],
        );
        let e = string_set_command(sock, "lo", &mut small).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut values = header(GSTATS_HDR / 8 + 3, &[ETHTOOL_GSTATS, 3]);
        let e = string_set_command(sock, "lo", &mut values).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        // Another command word (ETHTOOL_GDRVINFO) through this door: refused.
        let mut other = header(64, &[ETHTOOL_GDRVINFO]);
        let e = string_set_command(sock, "lo", &mut other).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(needed(&[]), None);
    }

    #[test]
    fn needed_sizes_follow_the_asked_count() {
        let g = header(2, &[ETHTOOL_GSTRINGS, 1, 4]);
        assert_eq!(needed(&g), Some(GSTRINGS_HDR + room(4) * ETH_GSTRING_LEN));
        let s = header(1, &[ETHTOOL_GSTATS, 4]);
        assert_eq!(needed(&s), Some(GSTATS_HDR + room(4) * 8));
        let mut i = header(3, &[ETHTOOL_GSSET_INFO]);
        i[SSET_MASK_AT / 8] = 1 << 1;
        assert_eq!(needed(&i), Some(SSET_DATA_AT + 4));
        assert_eq!(room(4), 264);
        assert_eq!(u32_at(&header(1, &[1, 2]), 4), Some(2));
        assert_eq!(u32_at(&header(1, &[1, 2]), 6), None);
    }
}
