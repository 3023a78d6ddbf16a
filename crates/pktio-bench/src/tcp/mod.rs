//! The TCP receive benchmark's engines: the receivers and the sender of
//! `pktio tcp-recv`, `pktio tcp-send` and `pktio bench tcp`, usable from Rust.
//!
//! - [`pattern`]: the hello header and the byte pattern (pure).
//! - [`conn`]: per-connection bookkeeping and the run report (pure).
//! - [`engine`]: the receivers — blocking, epoll, io_uring, io_uring zero-copy.
//! - [`send`]: the sender.
//! - [`mod@bench`]: the engine × connections × write-size matrix, in the lab or
//!   in a private network namespace over loopback.
//! - [`sys`]: the few host calls outside std, io-uring and the socket APIs
//!   (affinity, limits, interface addresses, a private netns).
//!
//! Every kernel call goes through std, rustix, io-uring and the safe APIs of
//! `pktio` (its io_uring buffer ring), `pktio-host` (CPU clocks and pinning,
//! interface addresses, sysctls) and `pktio-lab`: this module has no
//! `unsafe` of its own. Nothing
//! here prints; the results are values ([`conn::RecvReport`],
//! [`send::SendReport`], [`bench::MatrixReport`]) for the caller to show.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

pub mod bench;
pub mod conn;
pub mod engine;
pub mod pattern;
pub mod send;
pub mod sys;

pub use engine::{Engine, RecvConfig};

/// Errors of the TCP engines, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    /// A system call failed.
    #[error("{call} failed: {err}")]
    Sys {
        /// The call, as written in C.
        call: &'static str,
        /// The kernel's answer.
        err: io::Error,
    },
    /// The listening port is taken.
    #[error(
        "{addr} is already in use: pick another port with --bind, or stop the program holding it"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The sender could not connect.
    #[error("cannot connect to {to}: {err} (is `pktio tcp-recv` listening there?)")]
    Connect {
        /// The receiver's address.
        to: SocketAddr,
        /// The kernel's answer.
        err: io::Error,
    },
    /// `--lab` was given with an address outside the lab's range.
    #[error("{addr} is outside the lab: with --lab, addresses must be in 198.18.0.0/15 (RFC 2544 benchmarking range)")]
    NotLab {
        /// The address given.
        addr: IpAddr,
    },
    /// More connections than RLIMIT_NOFILE allows.
    #[error("{conns} connections need about {needed} open files, but RLIMIT_NOFILE allows {limit}: raise it (`ulimit -n {needed}`) or use fewer --conns")]
    TooManyConns {
        /// Connections asked for.
        conns: usize,
        /// Descriptors needed.
        needed: u64,
        /// The soft limit.
        limit: u64,
    },
    /// io_uring cannot be used on this host.
    #[error("io_uring is not available: {reason}")]
    UringUnavailable {
        /// Why, and what to do.
        reason: String,
    },
    /// Zero-copy receive is not possible on this device.
    #[error(
        "uring-zc: unsupported: the device needs header/data split and flow steering \
         (interface {ifname}, rx queue {queue}: IORING_REGISTER_ZCRX_IFQ returned {err}); \
         veth, loopback and virtio_net have neither. Use --engine uring. {nodev}"
    )]
    ZcUnsupported {
        /// The interface that holds the bind address.
        ifname: String,
        /// The receive queue asked for.
        queue: u32,
        /// EOPNOTSUPP.
        err: io::Error,
        /// What the device-less test-mode probe found.
        nodev: engine::zcrx::NodevMode,
    },
    /// Zero-copy receive registered, but pktio does not run its data path yet.
    #[error(
        "uring-zc: {ifname} queue {queue} accepted zero-copy receive, but pktio does not run \
         the RECV_ZC data path yet; use --engine uring"
    )]
    ZcNotImplemented {
        /// The interface.
        ifname: String,
        /// The queue.
        queue: u32,
    },
    /// A worker thread panicked (a bug).
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// Invalid arguments or an inconsistent state, explained.
    #[error("{0}")]
    Config(String),
}

impl TcpError {
    /// A failed call with its `io::Error`.
    pub fn sys(call: &'static str, err: io::Error) -> Self {
        TcpError::Sys { call, err }
    }
}

/// True for addresses in the lab range 198.18.0.0/15 ([`pktio_lab::LabAddr::in_range`]).
pub fn in_lab(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => pktio_lab::LabAddr::in_range(v4),
        IpAddr::V6(_) => false,
    }
}

/// Refuses a non-lab address in lab mode.
pub fn check_lab(lab: bool, ip: IpAddr) -> Result<(), TcpError> {
    if lab && !in_lab(ip) {
        return Err(TcpError::NotLab { addr: ip });
    }
    Ok(())
}

/// Checks that `conns` connections (plus `extra` descriptors) fit under RLIMIT_NOFILE.
pub fn check_fd_limit(conns: usize, extra: u64) -> Result<(), TcpError> {
    let Some(limit) = sys::nofile_limit() else {
        return Ok(());
    };
    let needed = sys::open_fds() + conns as u64 + extra;
    if needed > limit {
        return Err(TcpError::TooManyConns {
            conns,
            needed,
            limit,
        });
    }
    Ok(())
}

/// Binds the listening socket, turning EADDRINUSE into a clear error.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, TcpError> {
    TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => TcpError::AddrInUse { addr },
        io::ErrorKind::AddrNotAvailable => TcpError::Config(format!(
            "{addr} is not an address of this host (or this network namespace): {e}"
        )),
        _ => TcpError::sys("bind", e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_range_is_198_18_slash_15() {
        assert!(in_lab("198.18.0.1".parse().unwrap()));
        assert!(in_lab("198.19.255.254".parse().unwrap()));
        assert!(!in_lab("198.20.0.1".parse().unwrap()));
        assert!(!in_lab("198.17.0.1".parse().unwrap()));
        assert!(!in_lab("127.0.0.1".parse().unwrap()));
        assert!(!in_lab("::1".parse().unwrap()));
        assert!(check_lab(false, "10.0.0.1".parse().unwrap()).is_ok());
        assert!(matches!(
            check_lab(true, "10.0.0.1".parse().unwrap()),
            Err(TcpError::NotLab { .. })
        ));
    }
}
