//! Interfaces and time outside netlink: every address of every interface
//! (`getifaddrs(3)`), CPU clocks, and the local time zone's offset.
//!
//! ```
//! let lo = pktio_host::iface::interface_addrs()
//!     .unwrap()
//!     .into_iter()
//!     .find(|a| a.addr == std::net::IpAddr::from([127, 0, 0, 1]));
//! println!("{lo:?}, {:?}", pktio_host::iface::thread_cpu_time());
//! ```

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use crate::sys;

/// One IPv4 or IPv6 address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// Interface name (`lo`, `eth0`).
    pub name: String,
    /// Interface index (`if_nametoindex`); 0 if the interface disappeared
    /// while the list was read.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
}

/// Every IPv4 and IPv6 address of every interface of the calling thread's
/// network namespace, in the order `getifaddrs(3)` lists them (an
/// interface with several addresses appears once per address; addresses
/// of other families are left out).
///
/// # Errors
/// The `getifaddrs` errno (`ENOMEM`, or no netlink socket).
pub fn interface_addrs() -> io::Result<Vec<InterfaceAddr>> {
    Ok(sys::ifaddrs()?
        .into_iter()
        .map(|a| InterfaceAddr {
            name: a.name,
            index: a.index,
            addr: a.addr,
        })
        .collect())
}

/// CPU time used so far by the calling thread, user + system
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
pub fn thread_cpu_time() -> Duration {
    cpu_clock(rustix::time::ClockId::ThreadCPUTime)
}

/// CPU time used so far by every thread of the process, user + system
/// (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`).
pub fn process_cpu_time() -> Duration {
    cpu_clock(rustix::time::ClockId::ProcessCPUTime)
}

fn cpu_clock(id: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(id);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The local time zone's offset from UTC, in seconds, at `sec` seconds
/// after the epoch (`localtime_r(3)`'s `tm_gmtoff`; the zone is `TZ`, else
/// `/etc/localtime`). `None` if the C library cannot convert it.
pub fn utc_offset(sec: i64) -> Option<i64> {
    sys::utc_offset(sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() == before {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        let thread = thread_cpu_time();
        assert!(thread > before);
        assert!(process_cpu_time() >= thread);
    }

    #[test]
    fn loopback_is_listed() {
        let all = interface_addrs().unwrap();
        // lo gets 127.0.0.1 when it comes up: in a namespace whose lo is
        // still down the address is absent.
        if let Some(lo) = all.iter().find(|a| a.addr == IpAddr::from([127, 0, 0, 1])) {
            assert_eq!(lo.name, "lo");
            assert!(lo.index > 0);
        }
        assert!(!all.iter().any(|a| a.addr == IpAddr::from([192, 0, 2, 77])));
    }

    #[test]
    fn utc_offset_is_within_a_day() {
        let off = utc_offset(1_700_000_000).unwrap();
        assert!(off.abs() <= 24 * 3600, "{off}");
    }
}
