//! Classic BPF socket filters: `setsockopt(SO_ATTACH_FILTER)` and
//! `setsockopt(SO_DETACH_FILTER)`.
//!
//! `struct sock_filter` and `struct sock_fprog` come from `libc`
//! (`<linux/filter.h>`:
//! <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/filter.h?h=v6.18#n24>).

use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;
use crate::error::SysError;

/// `struct sock_filter`: one classic BPF instruction.
pub(crate) type RawSockFilter = libc::sock_filter;

const _: () = assert!(std::mem::size_of::<RawSockFilter>() == 8);

/// `setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &{len, insns})`.
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, insns: &[RawSockFilter]) -> Result<(), SysError> {
    const CALL: &str = "setsockopt(SO_ATTACH_FILTER)";
    let len = u16::try_from(insns.len()).map_err(|_| SysError::from_errno(CALL, libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (it copies the program).
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` is a valid sock_fprog whose `filter` points at `len`
    // live instructions for the duration of the call; the kernel copies them
    // and keeps no pointer. The option length passed is the struct's size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    cvt(CALL, ret).map(|_| ())
}

/// `setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &0)`.
pub(crate) fn detach_filter(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    let zero: libc::c_int = 0;
    // SAFETY: the option value is a live c_int of the length passed; the
    // kernel ignores it for SO_DETACH_FILTER.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            (&zero as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt("setsockopt(SO_DETACH_FILTER)", ret).map(|_| ())
}
