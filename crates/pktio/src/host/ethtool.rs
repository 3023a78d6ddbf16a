//! `ethtool -i` and `ethtool -S` ([`driver_stats`]) in the calling
//! thread's network namespace: `pktio_host::ethtool`'s reader, which checks
//! every count the kernel writes back, on a socket opened for the call; and,
//! for the AF_XDP and capture code, channel counts and the driver's name
//! with [`SysError`]s naming the call.

use std::io;
use std::os::fd::AsFd;

pub(crate) use pktio_host::ethtool::Channels;
pub use pktio_host::ethtool::DriverStats;
use pktio_host::ethtool::{self, control_socket};

use crate::error::{sys_error, SysError};

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
    let sock = control_socket()?;
    ethtool::driver_stats(sock.as_fd(), ifname)
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)` in the calling thread's network
/// namespace.
pub(crate) fn channels(ifname: &str) -> Result<Channels, SysError> {
    const CALL: &str = "ioctl(ETHTOOL_GCHANNELS)";
    let sock = control_socket().map_err(sys_error(CALL))?;
    ethtool::channels(sock.as_fd(), ifname).map_err(sys_error(CALL))
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)`: the driver's name.
pub(crate) fn driver_name(ifname: &str) -> Result<String, SysError> {
    const CALL: &str = "ioctl(ETHTOOL_GDRVINFO)";
    let sock = control_socket().map_err(sys_error(CALL))?;
    ethtool::drvinfo(sock.as_fd(), ifname)
        .map(|d| d.driver)
        .map_err(sys_error(CALL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interfaces_are_enodev() {
        let e = driver_stats("pktio-no-such0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }

    #[test]
    fn unknown_interfaces_are_enodev_with_the_call_named() {
        let e = channels("pktio-no-such0").unwrap_err();
        assert_eq!(
            (e.call, e.errno()),
            ("ioctl(ETHTOOL_GCHANNELS)", Some(libc::ENODEV))
        );
        let e = driver_name("a-name-longer-than-ifnamsiz").unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV));
    }
}
