//! The one io_uring call the `io-uring` crate cannot make without the
//! `IoUring` value: unregistering a provided-buffer ring through any fd of
//! the ring (`IORING_UNREGISTER_PBUF_RING`, kernel 5.19).
//!
//! uapi: <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/io_uring.h?h=v6.18>

use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt_long;
use crate::error::SysError;

/// `IORING_UNREGISTER_PBUF_RING`.
const IORING_UNREGISTER_PBUF_RING: libc::c_uint = 23;

/// `struct io_uring_buf_reg`.
#[repr(C)]
#[derive(Default)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}
const _: () = assert!(std::mem::size_of::<BufReg>() == 40);

/// `io_uring_register(ring, IORING_UNREGISTER_PBUF_RING, {bgid}, 1)`: the
/// kernel selects no buffer of group `bgid` from now on.
pub(crate) fn unregister_pbuf_ring(ring: BorrowedFd<'_>, bgid: u16) -> Result<(), SysError> {
    let reg = BufReg {
        bgid,
        ..Default::default()
    };
    // SAFETY: `reg` is a live `struct io_uring_buf_reg` the kernel only reads
    // (nr_args = 1); `ring` is an open fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_UNREGISTER_PBUF_RING,
            &reg as *const BufReg,
            1 as libc::c_uint,
        )
    };
    cvt_long("io_uring_register(UNREGISTER_PBUF_RING)", ret).map(|_| ())
}
