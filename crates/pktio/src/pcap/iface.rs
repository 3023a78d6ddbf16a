//! An interface's state and counters over rtnetlink (`RTM_GETLINK`), in
//! the calling thread's network namespace: whether it is up, and its
//! receive and drop counters (`IFLA_STATS64`). pktio-host's rtnetlink
//! client makes the calls; no `ip` involved.

use pktio_host::netlink::route::Route;
pub use pktio_host::netlink::route::{LinkCounters, LinkState};

use crate::error::SysError;
use crate::host::sys_error;

/// Asks the kernel about interface `ifindex` (`RTM_GETLINK`).
///
/// # Errors
/// The failed call; `ENODEV` when no interface has this index.
pub fn link_state(ifindex: u32) -> Result<LinkState, SysError> {
    Route::new()
        .and_then(|mut r| r.link_state(ifindex))
        .map_err(sys_error("RTM_GETLINK"))
}

/// Every interface of the calling thread's network namespace, by index:
/// `(ifindex, name, state)` (`RTM_GETLINK` with `NLM_F_DUMP`), as
/// `tcpdump -D` lists them.
///
/// # Errors
/// The failed call.
pub fn interfaces() -> Result<Vec<(u32, String, LinkState)>, SysError> {
    Route::new()
        .and_then(|mut r| r.interfaces())
        .map_err(sys_error("RTM_GETLINK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_counts() {
        // `lo` is index 1 in every network namespace.
        let s = link_state(1).expect("RTM_GETLINK for lo");
        assert!(s.up);
        assert!(s.counters.is_some());
        assert!(s.promiscuity.is_some());
    }

    #[test]
    fn the_dump_lists_loopback() {
        let all = interfaces().expect("RTM_GETLINK dump");
        let lo = all.iter().find(|(i, _, _)| *i == 1).expect("lo");
        assert_eq!(lo.1, "lo");
        assert!(lo.2.up);
    }

    #[test]
    fn missing_interface_is_enodev() {
        let e = link_state(0x7fff_fff0).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
    }
}
