//! The few host calls the TCP benchmark makes outside std, io-uring and the
//! socket APIs: interface addresses and the io_uring sysctl from the host
//! layer ([`pktio_host`]), the private namespace from [`pktio_lab`], limits
//! from rustix.

use std::io;
use std::net::IpAddr;

/// The soft limit on open files (`getrlimit(RLIMIT_NOFILE)`), `None` when unlimited.
pub fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// How many file descriptors this process has open now (entries of `/proc/self/fd`).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// `kernel.io_uring_disabled` from procfs: 0 allowed, 1 only for `kernel.io_uring_group`
/// (or CAP_SYS_ADMIN), 2 off for everyone; `None` when the file is absent (before 6.6).
pub fn io_uring_disabled() -> Option<u32> {
    pktio_host::procfs::sysctl("kernel.io_uring_disabled")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// The interface that holds address `ip`, as `(ifindex, name)`, found with `getifaddrs(3)`.
pub fn interface_of(ip: IpAddr) -> io::Result<Option<(u32, String)>> {
    Ok(pktio_host::iface::interface_addrs()?
        .into_iter()
        .find(|a| a.addr == ip)
        .map(|a| (a.index, a.name)))
}

/// Moves the calling thread into a new, private network namespace
/// (`unshare(CLONE_NEWNET)`) and brings its loopback up
/// ([`pktio_lab::enter_private_netns`]).
///
/// Threads the caller spawns afterwards start in the same namespace; it
/// disappears when the last of them ends. Needs CAP_SYS_ADMIN.
pub fn enter_private_netns() -> io::Result<()> {
    pktio_lab::enter_private_netns().map_err(|e| match e {
        pktio_lab::LabError::Sys { source, .. } | pktio_lab::LabError::Netlink { source, .. } => {
            source
        }
        e => io::Error::other(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_address() {
        let lo = interface_of(IpAddr::from([127, 0, 0, 1])).unwrap();
        // In a namespace whose lo is down the address is still listed.
        if let Some((index, name)) = lo {
            assert_eq!(name, "lo");
            assert!(index > 0);
        }
        assert_eq!(interface_of(IpAddr::from([192, 0, 2, 77])).unwrap(), None);
    }
}
