//! io_uring on an AF_PACKET socket: one multishot receive fed by a
//! provided-buffer ring, and batched sends, through the `io-uring` crate.
//!
//! This module holds the io_uring pieces, not the backend:
//! [`UringBackend`](crate::backend::UringBackend), the [`PacketIo`](crate::backend::PacketIo)
//! implementation built from them, lives in [`crate::backend`].
//!
//! # When io_uring is not there
//!
//! `io_uring_setup` fails with `EPERM` when the `kernel.io_uring_disabled`
//! sysctl is 2 (or 1 for a process without `CAP_SYS_ADMIN` outside
//! `kernel.io_uring_group`), or a seccomp filter or LSM forbids it, and with
//! `ENOSYS` on kernels built without it: [`UringError::Unavailable`] names
//! which ([`UringCause`]). A kernel without multishot receive (before 6.0)
//! gives [`UringError::MissingFeature`].
//!
//! # Building blocks for other io_uring users
//!
//! The pieces the backend is built from are public for programs that drive
//! their own `io_uring::IoUring` (the TCP receive engines of `pktio-cli`):
//! [`BufRing`], a provided-buffer ring that unregisters itself before its
//! memory goes; [`push_plain`], which queues requests that point at no
//! caller memory ([`PlainOp`]) without `unsafe`; and [`AnonMap`], page-aligned
//! memory to register by address.

pub(crate) mod ring;

use std::fmt;

pub use self::ring::{push_plain, AnonMap, BufRing, PlainOp};
use pktio_host::caps::{self, Cap};

use crate::error::SysError;
use crate::packet::PacketError;

/// Why io_uring cannot be used on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringCause {
    /// `/proc/sys/kernel/io_uring_disabled` forbids it: 2 disables io_uring
    /// for everyone, 1 for processes without `CAP_SYS_ADMIN` that are not
    /// in `kernel.io_uring_group` (kernel 6.6).
    DisabledBySysctl {
        /// The sysctl's value.
        value: u32,
    },
    /// `EPERM` with the sysctl allowing it: a seccomp filter, an LSM or a
    /// container runtime refuses `io_uring_setup`.
    NotPermitted,
    /// `ENOSYS`: the kernel was built without io_uring (`CONFIG_IO_URING`),
    /// or a seccomp filter hides the system call.
    NotImplemented,
}

impl fmt::Display for UringCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UringCause::DisabledBySysctl { value: 2 } => f.write_str(
                "io_uring is disabled for every process by the kernel.io_uring_disabled sysctl (= 2)",
            ),
            UringCause::DisabledBySysctl { value } => write!(
                f,
                "io_uring is restricted by the kernel.io_uring_disabled sysctl (= {value}) to \
                 processes with CAP_SYS_ADMIN or in the kernel.io_uring_group group"
            ),
            UringCause::NotPermitted => f.write_str(
                "io_uring_setup is not permitted (EPERM) although the io_uring_disabled sysctl \
                 allows it: a seccomp filter, an LSM or the container runtime forbids io_uring",
            ),
            UringCause::NotImplemented => f.write_str(
                "io_uring_setup does not exist (ENOSYS): the kernel was built without \
                 CONFIG_IO_URING, or a seccomp filter hides it",
            ),
        }
    }
}

/// Classifies a failed `io_uring_setup`: its errno, the value of
/// `/proc/sys/kernel/io_uring_disabled` (if readable), and whether the
/// process has `CAP_SYS_ADMIN`. `None` for an errno with another cause
/// (`ENOMEM`, `EINVAL` …).
pub fn classify_setup_error(
    errno: i32,
    sysctl: Option<u32>,
    cap_sys_admin: bool,
) -> Option<UringCause> {
    match errno {
        libc::EPERM => Some(match sysctl {
            Some(2) => UringCause::DisabledBySysctl { value: 2 },
            Some(1) if !cap_sys_admin => UringCause::DisabledBySysctl { value: 1 },
            _ => UringCause::NotPermitted,
        }),
        libc::ENOSYS => Some(UringCause::NotImplemented),
        _ => None,
    }
}

/// Parses the `io_uring_disabled` sysctl file's content.
pub fn parse_disabled_sysctl(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// What can go wrong with the io_uring backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UringError {
    /// io_uring cannot be used on this host; `cause` says why.
    #[error("io_uring is not available: {cause}")]
    Unavailable {
        /// Why.
        cause: UringCause,
        /// The failed `io_uring_setup`.
        #[source]
        source: SysError,
    },
    /// The kernel has io_uring but not a feature this backend needs.
    #[error("this kernel's io_uring lacks {feature} (kernel {since})")]
    MissingFeature {
        /// The feature.
        feature: &'static str,
        /// The kernel version that added it.
        since: &'static str,
        /// The kernel's answer, if one.
        #[source]
        source: Option<SysError>,
    },
    /// The backend was used from another thread than its first use
    /// (`IORING_SETUP_SINGLE_ISSUER`: the kernel answers `EEXIST`).
    #[error(
        "the io_uring backend is bound to the thread that first used it; it was used from another"
    )]
    WrongThread,
    /// An io_uring call failed.
    #[error("{op} on {ifname} failed")]
    Sys {
        /// What we were doing.
        op: &'static str,
        /// Interface.
        ifname: String,
        /// The failed call.
        #[source]
        source: SysError,
    },
    /// The AF_PACKET socket under the ring.
    #[error(transparent)]
    Packet(#[from] PacketError),
}

impl UringError {
    /// Advice for a person, when there is a well-known cause.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            UringError::Unavailable {
                cause: UringCause::DisabledBySysctl { .. },
                ..
            } => Some(
                "set /proc/sys/kernel/io_uring_disabled to 0 (sysctl kernel.io_uring_disabled=0), \
                 or use another backend (--backend v3)",
            ),
            UringError::Unavailable { .. } => {
                Some("allow io_uring_setup in the sandbox, or use another backend (--backend v3)")
            }
            UringError::MissingFeature { .. } => {
                Some("multishot receive needs Linux 6.0: use --backend v3 on older kernels")
            }
            UringError::WrongThread => Some("open the backend in the thread that runs its loop"),
            UringError::Packet(e) => e.hint(),
            UringError::Sys { source, .. } => source.hint(),
        }
    }
}

/// The error of a failed `io_uring_setup`: [`UringError::Unavailable`] with
/// its cause when one is known (reading the sysctl and this process's
/// capabilities), else [`UringError::Sys`].
pub(crate) fn setup_error(e: std::io::Error) -> UringError {
    let errno = e.raw_os_error().unwrap_or(0);
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|t| parse_disabled_sysctl(&t));
    let cap = caps::effective().is_ok_and(|c| c.has(Cap::SYS_ADMIN));
    let source = SysError {
        call: "io_uring_setup",
        source: e,
    };
    match classify_setup_error(errno, sysctl, cap) {
        Some(cause) => UringError::Unavailable { cause, source },
        None => UringError::Sys {
            op: "create the ring",
            ifname: String::new(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_name_their_cause() {
        assert_eq!(
            classify_setup_error(libc::EPERM, Some(2), true),
            Some(UringCause::DisabledBySysctl { value: 2 })
        );
        assert_eq!(
            classify_setup_error(libc::EPERM, Some(1), false),
            Some(UringCause::DisabledBySysctl { value: 1 })
        );
        assert_eq!(
            classify_setup_error(libc::EPERM, Some(1), true),
            Some(UringCause::NotPermitted)
        );
        assert_eq!(
            classify_setup_error(libc::EPERM, Some(0), false),
            Some(UringCause::NotPermitted)
        );
        assert_eq!(
            classify_setup_error(libc::EPERM, None, false),
            Some(UringCause::NotPermitted)
        );
        assert_eq!(
            classify_setup_error(libc::ENOSYS, Some(0), true),
            Some(UringCause::NotImplemented)
        );
        assert_eq!(classify_setup_error(libc::ENOMEM, Some(0), true), None);
        assert!(UringCause::DisabledBySysctl { value: 2 }
            .to_string()
            .contains("io_uring_disabled sysctl (= 2)"));
    }

    #[test]
    fn reads_the_sysctl() {
        assert_eq!(parse_disabled_sysctl("2\n"), Some(2));
        assert_eq!(parse_disabled_sysctl("x"), None);
    }

    #[test]
    fn unavailable_errors_give_advice() {
        let e = UringError::Unavailable {
            cause: UringCause::DisabledBySysctl { value: 2 },
            source: SysError::from_errno("io_uring_setup", libc::EPERM),
        };
        assert!(e.to_string().contains("io_uring_disabled"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("io_uring_disabled")));
    }
}
