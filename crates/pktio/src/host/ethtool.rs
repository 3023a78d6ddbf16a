//! `ethtool -i` and `ethtool -S` ([`driver_stats`]) in the calling
//! thread's network namespace: `pktio_host::ethtool`'s reader, which checks
//! every count the kernel writes back, on a socket opened for the call.

use std::io;
use std::os::fd::AsFd;

pub use pktio_host::ethtool::DriverStats;

/// `ethtool -i` and `ethtool -S` for one interface of the calling thread's
/// network namespace: the driver name and bus address
/// (`ETHTOOL_GDRVINFO`), and every driver counter (`ETHTOOL_GSSET_INFO`,
/// `ETHTOOL_GSTRINGS`, `ETHTOOL_GSTATS`), all through the `SIOCETHTOOL`
/// ioctl.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EOPNOTSUPP` when the driver has no
/// ethtool operations, and an error saying to read again when the driver's
/// number of counters kept changing or the kernel's reply was out of bounds.
pub fn driver_stats(ifname: &str) -> io::Result<DriverStats> {
    let sock = pktio_host::ethtool::control_socket()?;
    pktio_host::ethtool::driver_stats(sock.as_fd(), ifname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interfaces_are_enodev() {
        let e = driver_stats("pktio-no-such0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }
}
