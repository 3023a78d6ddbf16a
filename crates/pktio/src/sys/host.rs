//! Host queries outside any socket: `getifaddrs(3)`, which hands back a
//! list that stays valid until the one `freeifaddrs` below.

use std::ffi::CStr;
use std::net::IpAddr;

use crate::error::SysError;

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
pub(crate) fn ifaddrs() -> Result<Vec<IfAddr>, SysError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(SysError::last("getifaddrs"));
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
