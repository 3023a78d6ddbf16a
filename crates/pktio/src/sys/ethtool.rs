//! The ethtool ioctls the library's AF_XDP and capture code read (channel
//! counts, the driver's name), with [`SysError`]s naming the call: a thin
//! adapter over `pktio_host::ethtool`, which holds the one `SIOCETHTOOL`
//! wrapper (no kernel call of its own here).

use std::os::fd::AsFd;

pub(crate) use pktio_host::ethtool::Channels;
use pktio_host::ethtool::{self, control_socket};

use crate::error::SysError;
use crate::host::sys_error;

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
