//! The few raw system calls of the lab that need `unsafe`: `unshare(2)`
//! and the `pre_exec` hook that moves a child process into
//! a namespace.
//!
//! # Safety
//!
//! - `unshare` is only ever called with `CLONE_NEWNET` (or `CLONE_NEWNS` in a
//!   freshly forked, single-threaded child), never with `CLONE_FILES`, so no
//!   thread can observe a file descriptor table it does not share (the reason
//!   rustix marks `unshare` unsafe).
//! - The `pre_exec` hook runs between `fork` and `exec`; it only makes raw
//!   system calls through rustix on borrowed, still-open descriptors and
//!   constant C strings: no allocation, no locks (async-signal-safe).

#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

/// `unshare(CLONE_NEWNET)`: moves the calling thread into a new, empty
/// network namespace.
pub(crate) fn unshare_net() -> io::Result<()> {
    // SAFETY: only CLONE_NEWNET is unshared; the file descriptor table stays
    // shared with every other thread (see the module's Safety section).
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(io::Error::from)
}

/// `setns(fd, CLONE_NEWNET)`: moves the calling thread into the network
/// namespace `fd` refers to.
pub(crate) fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(fd, Some(LinkNameSpaceType::Network))
        .map_err(io::Error::from)
}

/// A [`Command`] whose child process enters the network namespace `ns`
/// before `exec`, in a private mount namespace with a fresh `/sys` (so
/// `/sys/class/net` lists the namespace's interfaces, as under
/// `ip netns exec`).
///
/// The child runs `setns(ns, CLONE_NEWNET)`, `unshare(CLONE_NEWNS)`,
/// `mount(NULL, "/", NULL, MS_SLAVE|MS_REC)` (so nothing propagates back), and
/// `mount("pktio-lab", "/sys", "sysfs")` stacked over the old `/sys`. If one
/// of those fails, `spawn`/`status`/`output` return that error.
pub(crate) fn command_in_netns(program: &OsStr, ns: Arc<OwnedFd>) -> Command {
    let mut cmd = Command::new(program);
    let hook = move || -> io::Result<()> {
        setns_net(ns.as_fd())?;
        // SAFETY: we are in the forked child, which has a single thread; only
        // the mount namespace is unshared (see the module's Safety section).
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }?;
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )?;
        const SYSFS: &CStr = c"sysfs";
        rustix::mount::mount(c"pktio-lab", c"/sys", SYSFS, MountFlags::empty(), None)?;
        Ok(())
    };
    // SAFETY: the hook only makes raw system calls (setns, unshare, mount) through rustix with constant C strings and a descriptor kept open by the `Arc` the closure owns; it allocates nothing and takes no locks, so it is safe to run between fork and exec.
    unsafe {
        cmd.pre_exec(hook);
    }
    cmd
}
