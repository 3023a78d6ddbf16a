//! The one place with raw kernel ABI and system calls.
//!
//! # What a function here does
//!
//! Each function does one operation and names, in its doc, the calls it
//! makes. Most make one system call. A few make the short fixed sequence
//! their operation needs: `xdp::map_ring` (`getsockopt(XDP_MMAP_OFFSETS)`,
//! then `mmap`), `xdp::mtu` (a socket to hold the `ioctl`, then the
//! `ioctl`) and `xdp::set_busy_poll` (three `setsockopt`s). Questions about the
//! host (ethtool, netlink) are not asked here but through the host layer,
//! `pktio-host`, from `crate::host`. None retries, waits or picks a fallback: that policy
//! lives with the callers. The one value made up here is
//! `xdp::max_skb_frags`'s default when `/proc` cannot be read, and its doc
//! says so.
//!
//! # Safety
//!
//! The `#[repr(C)]` structs mirror the uapi headers named beside them, with
//! their sizes asserted at compile time. A function whose correctness rests
//! on its caller (a pointer the kernel keeps, a buffer the kernel writes as
//! a command word says) is an `unsafe fn` with a `# Safety` section. Outside
//! `sys`, raw pointers reach libc only in `host::privilege` (the user
//! database and the credential calls); the rest of the crate sees
//! `Result<_, SysError>`, owned fds and RAII mappings.
#![allow(unsafe_code)]

pub(crate) mod bpf;
pub(crate) mod filter;
pub(crate) mod mmap;
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
