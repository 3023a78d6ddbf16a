//! Host queries for tools and benchmarks around packet I/O: CPU time
//! (the thread's and the process's CPU clocks), interface addresses (`getifaddrs`), and a driver's name
//! and private counters (`ethtool -i`, `ethtool -S`).
//!
//! Safe code over the host layer (`pktio-host`), which makes the calls and
//! which this module re-exports from. Interfaces are those of the calling
//! thread's network namespace.
//!
//! ```no_run
//! let before = pktio::host::thread_cpu_time();
//! let lo = pktio::host::interface_addrs()?
//!     .into_iter()
//!     .find(|a| a.addr == std::net::IpAddr::from([127, 0, 0, 1]));
//! println!("{lo:?}, {:?}", pktio::host::thread_cpu_time() - before);
//! # Ok::<(), std::io::Error>(())
//! ```

mod ethtool;
mod privilege;

use std::io;

use crate::error::SysError;
use crate::sys;

pub use self::ethtool::{driver_stats, DriverStats};
pub use self::privilege::{drop_privileges, User};
pub use pktio_host::iface::{interface_addrs, process_cpu_time, thread_cpu_time, InterfaceAddr};

/// The name of the interface with index `ifindex` in the calling thread's
/// network namespace (`if_indextoname`), or `None` when there is none.
pub fn interface_name(ifindex: u32) -> Option<String> {
    sys::xdp::if_indextoname(ifindex).ok()
}

/// A host-layer error (an `io::Error` or a `pktio_host::HostError`) as a
/// [`SysError`] naming `call`; the errno survives.
pub(crate) fn sys_error<E: Into<io::Error>>(call: &'static str) -> impl FnOnce(E) -> SysError {
    move |e| SysError {
        call,
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_their_errno() {
        let e = sys_error("ioctl(X)")(io::Error::from_raw_os_error(libc::ENODEV));
        assert_eq!((e.call, e.errno()), ("ioctl(X)", Some(libc::ENODEV)));
        assert_eq!(interface_name(0x7fff_fff0), None);
        assert!(thread_cpu_time() <= process_cpu_time());
    }
}
