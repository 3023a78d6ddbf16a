//! The one place with raw kernel ABI and system calls.
//!
//! # Safety
//!
//! Every function here wraps one kernel operation (a system call, or the
//! few calls one operation needs, such as a `getsockopt` that first asks
//! for a size). The `#[repr(C)]` structs
//! mirror the uapi headers named beside them, with their sizes asserted at
//! compile time. Nothing outside `sys` calls `libc` functions that take raw
//! pointers; the rest of the crate sees `Result<_, SysError>`, owned fds and
//! RAII mappings.
#![allow(unsafe_code)]

pub(crate) mod bpf;
pub(crate) mod ethtool;
pub(crate) mod filter;
pub(crate) mod mmap;
pub(crate) mod netdev;
pub(crate) mod packet;
pub(crate) mod uring;
pub(crate) mod xdp;

use crate::error::SysError;

/// Converts a libc-style return value (`-1` and `errno` on failure).
pub(crate) fn cvt(call: &'static str, ret: libc::c_int) -> Result<libc::c_int, SysError> {
    if ret == -1 {
        Err(SysError::last(call))
    } else {
        Ok(ret)
    }
}

/// Converts a libc-style `long` return value (`syscall(2)`).
pub(crate) fn cvt_long(call: &'static str, ret: libc::c_long) -> Result<libc::c_long, SysError> {
    if ret == -1 {
        Err(SysError::last(call))
    } else {
        Ok(ret)
    }
}

/// Converts a rustix error.
pub(crate) fn rx(call: &'static str) -> impl FnOnce(rustix::io::Errno) -> SysError {
    move |e| SysError::from_errno(call, e.raw_os_error())
}
