//! io_uring zero-copy receive (ZCRX): `IORING_REGISTER_ZCRX_IFQ` + `IORING_OP_RECV_ZC`.
//!
//! Zero-copy receive binds one hardware receive queue of a NIC to an area of
//! user memory: the NIC writes payloads straight into the area (headers go to
//! kernel memory) and the application returns buffers through a refill ring.
//! That needs, from the device:
//! - **header/data split**, so payloads land page-aligned in the user area;
//! - **flow steering** (an ntuple rule), so only this flow reaches the queue;
//! - the netdev **queue-management API** (restart one queue with a new memory provider).
//!
//! veth, loopback and virtio_net have none of these, and the registration
//! fails with EOPNOTSUPP: [`TcpError::ZcUnsupported`] says so plainly.
//!
//! Device-less test mode: upstream added `ZCRX_REG_NODEV` (flag 2 of
//! `io_uring_zcrx_ifq_reg.flags`) in 2026, after Linux 6.18. It registers an
//! instance with no device, all data copied by the fallback path. This module
//! probes for it and reports the answer; kernels up to 6.18 reject the flag
//! with EINVAL. The RECV_ZC data path is not run by pktio yet (no device on
//! which it could be tested): a successful registration is reported as
//! [`TcpError::ZcNotImplemented`].
//!
//! Registration needs a ring with `IORING_SETUP_CQE32 | DEFER_TASKRUN |
//! SINGLE_ISSUER` (EINVAL otherwise), CAP_NET_ADMIN, and Linux 6.15+.

use std::net::{IpAddr, TcpListener};

use io_uring::types::{
    io_uring_region_desc, io_uring_zcrx_area_reg, io_uring_zcrx_ifq_reg, io_uring_zcrx_rqe,
    IORING_MEM_REGION_TYPE_USER,
};
use io_uring::{cqueue, squeue, IoUring};
use pktio::uring::AnonMap;

use super::uring::{check_enabled, setup_error};
use super::RecvConfig;
use crate::tcp::conn::RecvReport;
use crate::tcp::sys;
use crate::tcp::TcpError;

/// `ZCRX_REG_NODEV`: register without a device (copy fallback only); after 6.18.
pub const ZCRX_REG_NODEV: u32 = 2;
/// Refill-ring entries asked for.
const RQ_ENTRIES: u32 = 4096;
/// Size of the user area (must be page-aligned): 16 MiB.
const AREA_LEN: usize = 16 << 20;

/// What the kernel said about the device-less test mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodevMode {
    /// The kernel accepted `ZCRX_REG_NODEV`.
    Available,
    /// The kernel rejected it (EINVAL: the flag is unknown, 6.18 and older).
    Absent,
    /// The probe failed for another reason.
    Unknown(String),
}

impl std::fmt::Display for NodevMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodevMode::Available => write!(
                f,
                "this kernel offers the device-less zcrx test mode (ZCRX_REG_NODEV), \
                 which pktio does not drive yet"
            ),
            NodevMode::Absent => write!(
                f,
                "this kernel has no device-less zcrx test mode (ZCRX_REG_NODEV came after 6.18)"
            ),
            NodevMode::Unknown(e) => {
                write!(f, "probing the device-less zcrx test mode failed: {e}")
            }
        }
    }
}

/// A ring with the setup zero-copy receive requires.
fn zc_ring() -> Result<IoUring<squeue::Entry, cqueue::Entry32>, TcpError> {
    check_enabled()?;
    IoUring::<squeue::Entry, cqueue::Entry32>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(64)
        .map_err(setup_error)
}

/// Calls `io_uring_register(IORING_REGISTER_ZCRX_IFQ)` for `(if_idx, rxq)` with `flags`,
/// on a fresh ring with a fresh 16 MiB area and refill region (all released on return).
fn register(if_idx: u32, rxq: u32, flags: u32) -> Result<std::io::Result<()>, TcpError> {
    let ring = zc_ring()?;
    let area = AnonMap::new(AREA_LEN).map_err(|e| TcpError::sys("mmap(zcrx area)", e.source))?;
    let region_len = (RQ_ENTRIES as usize * std::mem::size_of::<io_uring_zcrx_rqe>() + 4096)
        .next_multiple_of(4096);
    let region =
        AnonMap::new(region_len).map_err(|e| TcpError::sys("mmap(zcrx refill ring)", e.source))?;
    let mut area_reg = io_uring_zcrx_area_reg {
        addr: area.as_ptr() as u64,
        len: area.len() as u64,
        ..Default::default()
    };
    let mut region_desc = io_uring_region_desc {
        user_addr: region.as_ptr() as u64,
        size: region.len() as u64,
        flags: IORING_MEM_REGION_TYPE_USER,
        ..Default::default()
    };
    let reg = io_uring_zcrx_ifq_reg {
        if_idx,
        if_rxq: rxq,
        rq_entries: RQ_ENTRIES,
        flags,
        area_ptr: &mut area_reg as *mut io_uring_zcrx_area_reg as u64,
        region_ptr: &mut region_desc as *mut io_uring_region_desc as u64,
        ..Default::default()
    };
    let r = ring.submitter().register_ifq(&reg);
    // The ring goes first: a successful registration pins `area` and `region`.
    drop(ring);
    drop(region);
    drop(area);
    Ok(r)
}

/// Asks the kernel whether it has the device-less test mode (`ZCRX_REG_NODEV`).
pub fn probe_nodev() -> NodevMode {
    match register(0, 0, ZCRX_REG_NODEV) {
        Ok(Ok(())) => NodevMode::Available,
        Ok(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => NodevMode::Absent,
        Ok(Err(e)) => NodevMode::Unknown(e.to_string()),
        Err(e) => NodevMode::Unknown(e.to_string()),
    }
}

/// Tries to set up zero-copy receive on the interface that holds `ip`, queue `rxq`.
///
/// # Errors
/// - [`TcpError::ZcUnsupported`]: the device cannot do it (EOPNOTSUPP), with
///   the result of the device-less probe;
/// - [`TcpError::ZcNotImplemented`]: registration worked, but pktio does not run
///   the RECV_ZC data path yet;
/// - [`TcpError::UringUnavailable`], [`TcpError::Sys`] and [`TcpError::Config`]
///   for the rest (no such interface, EPERM without CAP_NET_ADMIN, …).
pub fn setup(ip: IpAddr, rxq: u32) -> Result<(), TcpError> {
    if ip.is_unspecified() {
        return Err(TcpError::Config(
            "uring-zc binds one receive queue of one NIC: give --bind the address of the \
             receiving interface, not 0.0.0.0"
                .into(),
        ));
    }
    let (if_idx, ifname) = sys::interface_of(ip)
        .map_err(|e| TcpError::sys("getifaddrs", e))?
        .ok_or_else(|| TcpError::Config(format!("no interface in this namespace holds {ip}")))?;
    match register(if_idx, rxq, 0)? {
        Ok(()) => Err(TcpError::ZcNotImplemented { ifname, queue: rxq }),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(TcpError::ZcUnsupported {
            ifname,
            queue: rxq,
            err: e,
            nodev: probe_nodev(),
        }),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(TcpError::Config(format!(
            "IORING_REGISTER_ZCRX_IFQ on {ifname} queue {rxq}: {e}: the kernel rejected the \
             arguments (zero-copy receive needs Linux 6.15+ and an existing rx queue)"
        ))),
        Err(e) => Err(TcpError::sys("io_uring_register(ZCRX_IFQ)", e)),
    }
}

/// The `uring-zc` engine: sets up zero-copy receive for the listener's address.
pub fn run(listener: TcpListener, cfg: &RecvConfig) -> Result<RecvReport, TcpError> {
    let local = listener
        .local_addr()
        .map_err(|e| TcpError::sys("getsockname", e))?;
    setup(local.ip(), cfg.zc_queue)?;
    Err(TcpError::ZcNotImplemented {
        ifname: local.ip().to_string(),
        queue: cfg.zc_queue,
    })
}
