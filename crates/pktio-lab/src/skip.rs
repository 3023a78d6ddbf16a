//! # Skipping a test that needs privileges
//!
//! The one skip policy of the workspace's tests lives in `pktio-host`
//! ([`pktio_host::skip`]), where the library's own unit tests reach it
//! too; this module re-exports it for the integration tests, which all
//! have `pktio-lab` at hand, and adds the lab's shorthand:
//!
//! - [`skip_unless!(needs, why)`](crate::skip::skip_unless) returns from
//!   the test, printing `SKIPPED <test>: needs CAP_... (<why>)`, when the
//!   process lacks any of the capabilities `needs`;
//! - [`require_root!()`](crate::require_root) is that with [`LAB`], the
//!   capabilities building a [`Lab`](crate::Lab) takes.
//!
//! A test that passes the check runs, and any error fails it.

pub use pktio_host::caps::Cap;
pub use pktio_host::skip::lacks;
pub use pktio_host::skip_unless;

/// What building a lab takes: `CAP_NET_ADMIN` (links, addresses) and
/// `CAP_SYS_ADMIN` (`unshare`/`setns` of network namespaces, bind mounts).
pub const LAB: &[Cap] = &[Cap::NET_ADMIN, Cap::SYS_ADMIN];

/// Returns from the calling test, printing
/// `SKIPPED <test>: needs CAP_... (a lab: ...)`, when the process lacks a
/// capability in [`LAB`](crate::skip::LAB).
///
/// `require_root!()` returns `()`; `require_root!(value)` returns `value`,
/// for tests that return a `Result`: `pktio_lab::require_root!(Ok(()));`.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!(())
    };
    ($ret:expr) => {
        $crate::skip::skip_unless!(
            $crate::skip::LAB,
            "a lab: veth links and network namespaces",
            $ret
        )
    };
}
