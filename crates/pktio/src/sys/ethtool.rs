//! The legacy ethtool ioctl (`SIOCETHTOOL`): channel counts, driver info,
//! and the three commands of `ethtool -S` (`ETHTOOL_GSSET_INFO`,
//! `ETHTOOL_GSTRINGS`, `ETHTOOL_GSTATS`).
//!
//! uapi: <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/ethtool.h?h=v6.18>
//!
//! # Safety
//!
//! The ioctl hands the kernel a pointer to a command buffer through
//! `ifr_data`, and the kernel writes as much as the command word in that
//! buffer calls for. [`ethtool_ioctl`] is therefore `unsafe`; its callers
//! here pass either the `#[repr(C)]` struct of the command (sizes asserted at
//! compile time), or, for the `ethtool -S` commands whose replies have a
//! variable length, a buffer [`string_set_command`] has checked against the
//! count it carries: room for [`room`]`(n)` entries when the request asks
//! for `n`. A kernel that honours the count writes `n` entries; an older one
//! writes its *current* count, which fits unless the driver's count more
//! than doubled between two calls.

use std::os::fd::AsRawFd;

use rustix::net::{AddressFamily, SocketType};

use super::{cvt, rx};
use crate::error::SysError;

/// `ETHTOOL_GDRVINFO`: driver information.
const ETHTOOL_GDRVINFO: u32 = 0x03;
/// `ETHTOOL_GSTRINGS`: the names of a string set.
pub(crate) const ETHTOOL_GSTRINGS: u32 = 0x1b;
/// `ETHTOOL_GSTATS`: the driver's private counters.
pub(crate) const ETHTOOL_GSTATS: u32 = 0x1d;
/// `ETHTOOL_GSSET_INFO`: the sizes of string sets.
pub(crate) const ETHTOOL_GSSET_INFO: u32 = 0x37;
/// `ETHTOOL_GCHANNELS`: channel (queue) counts.
const ETHTOOL_GCHANNELS: u32 = 0x3c;
/// `ETH_SS_STATS`: the string set of `ethtool -S`.
pub(crate) const ETH_SS_STATS: u32 = 1;
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

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolChannels>() == 36);

/// `struct ethtool_drvinfo`, 196 bytes.
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolDrvinfo>() == 196);

/// `ioctl(SIOCETHTOOL)` with `data` as the command buffer, on a throw-away
/// datagram socket of the calling thread's network namespace.
///
/// # Safety
///
/// `data` must hold the command word of an ethtool command in its first four
/// bytes and be large enough for everything the kernel reads and writes for
/// that command (module Safety).
unsafe fn ethtool_ioctl<T: ?Sized>(
    call: &'static str,
    ifname: &str,
    data: &mut T,
) -> Result<(), SysError> {
    let sock =
        rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(rx(call))?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= ifr.ifr_name.len() {
        return Err(SysError::from_errno(call, libc::ENODEV));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: SIOCETHTOOL reads `ifr` and reads/writes the command buffer it
    // points to; both are live and exclusively borrowed for the call, and the
    // buffer is sized for its command (this function's contract).
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    cvt(call, ret).map(|_| ())
}

/// Channel (queue) counts of an interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Channels {
    pub(crate) rx: u32,
    pub(crate) tx: u32,
    pub(crate) combined: u32,
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)`.
pub(crate) fn channels(ifname: &str) -> Result<Channels, SysError> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: `ch` is the `struct ethtool_channels` of ETHTOOL_GCHANNELS.
    unsafe { ethtool_ioctl("ioctl(ETHTOOL_GCHANNELS)", ifname, &mut ch) }?;
    Ok(Channels {
        rx: ch.rx_count,
        tx: ch.tx_count,
        combined: ch.combined_count,
    })
}

/// What `ETHTOOL_GDRVINFO` says about a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DrvInfo {
    /// Driver name (`veth`, `virtio_net`, …).
    pub(crate) driver: String,
    /// Bus address, empty for virtual devices.
    pub(crate) bus_info: String,
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)`: the driver's name and bus address.
pub(crate) fn drvinfo(ifname: &str) -> Result<DrvInfo, SysError> {
    let mut info = EthtoolDrvinfo {
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
    };
    // SAFETY: `info` is the `struct ethtool_drvinfo` of ETHTOOL_GDRVINFO.
    unsafe { ethtool_ioctl("ioctl(ETHTOOL_GDRVINFO)", ifname, &mut info) }?;
    let c_str = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    Ok(DrvInfo {
        driver: c_str(&info.driver),
        bus_info: c_str(&info.bus_info),
    })
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)`: the driver's name.
pub(crate) fn driver_name(ifname: &str) -> Result<String, SysError> {
    drvinfo(ifname).map(|d| d.driver)
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
    let cmd = u32_at(buf, 0)?;
    match cmd {
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
pub(crate) fn string_set_command(ifname: &str, buf: &mut [u64]) -> Result<(), SysError> {
    const CALL: &str = "ioctl(SIOCETHTOOL)";
    match needed(buf) {
        Some(n) if n <= std::mem::size_of_val(buf) => {}
        _ => return Err(SysError::from_errno(CALL, libc::EINVAL)),
    }
    // SAFETY: `buf` carries one of the three commands and is large enough
    // for it, with headroom for a count that changed (checked just above).
    unsafe { ethtool_ioctl(CALL, ifname, buf) }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // 3 names asked for, room for only 3: refused (EINVAL), never passed on.
        let mut small = header(
            (GSTRINGS_HDR + 3 * ETH_GSTRING_LEN).div_ceil(8),
            &[ETHTOOL_GSTRINGS, ETH_SS_STATS, 3],
        );
        let e = string_set_command("lo", &mut small).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        let mut values = header(GSTATS_HDR / 8 + 3, &[ETHTOOL_GSTATS, 3]);
        let e = string_set_command("lo", &mut values).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        // Another command word (ETHTOOL_GDRVINFO) through this door: refused.
        let mut other = header(64, &[ETHTOOL_GDRVINFO]);
        let e = string_set_command("lo", &mut other).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert_eq!(needed(&[]), None);
    }

    #[test]
    fn needed_sizes_follow_the_asked_count() {
        let g = header(2, &[ETHTOOL_GSTRINGS, ETH_SS_STATS, 4]);
        assert_eq!(needed(&g), Some(GSTRINGS_HDR + room(4) * ETH_GSTRING_LEN));
        let s = header(1, &[ETHTOOL_GSTATS, 4]);
        assert_eq!(needed(&s), Some(GSTATS_HDR + room(4) * 8));
        let mut i = header(3, &[ETHTOOL_GSSET_INFO]);
        i[SSET_MASK_AT / 8] = 1 << ETH_SS_STATS;
        assert_eq!(needed(&i), Some(SSET_DATA_AT + 4));
        assert_eq!(room(4), 264);
    }
}
