//! The few raw system calls of the lab that need `unsafe`: `unshare(2)`,
//! the ethtool ioctl, and the `pre_exec` hook that moves a child process into
//! a namespace.
//!
//! # Safety
//!
//! - `unshare` is only ever called with `CLONE_NEWNET` (or `CLONE_NEWNS` in a
//!   freshly forked, single-threaded child), never with `CLONE_FILES`, so no
//!   thread can observe a file descriptor table it does not share (the reason
//!   rustix marks `unshare` unsafe).
//! - The ethtool ioctl gets a zero-initialised `struct ifreq` whose
//!   `ifr_data` points at a live, correctly laid out `struct ethtool_value` for
//!   the duration of the call.
//! - The `pre_exec` hook runs between `fork` and `exec`; it only makes raw
//!   system calls through rustix on borrowed, still-open descriptors and
//!   constant C strings: no allocation, no locks (async-signal-safe).

#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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

/// `ETHTOOL_GTSO` from `<linux/ethtool.h>`: get the TSO flags.
const ETHTOOL_GTSO: u32 = 0x0000_001e;
/// `ETHTOOL_STSO` from `<linux/ethtool.h>`: set the TSO flags
/// (`NETIF_F_ALL_TSO`: TCPv4, TCPv6, ECN and mangle-id segmentation).
const ETHTOOL_STSO: u32 = 0x0000_001f;
/// `ETHTOOL_GGRO` from `<linux/ethtool.h>`: get the GRO flag.
const ETHTOOL_GGRO: u32 = 0x0000_002b;
/// `ETHTOOL_SGRO` from `<linux/ethtool.h>`: set the GRO flag.
const ETHTOOL_SGRO: u32 = 0x0000_002c;

/// `struct ethtool_value` from `<linux/ethtool.h>`
/// (<https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/ethtool.h?h=v6.18>).
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}
const _: () = assert!(std::mem::size_of::<EthtoolValue>() == 8);

/// `ioctl(sock, SIOCETHTOOL, {ifname, &ethtool_value{cmd, data}})`; returns
/// the `data` the kernel left in the struct. The interface is looked up in
/// the network namespace of `sock`.
fn ethtool_value(sock: BorrowedFd<'_>, ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut value = EthtoolValue { cmd, data };
    // SAFETY: `ifreq` is a plain C struct (a char array and a union of
    // integers, sockaddrs and pointers) for which all-zero bytes are valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name (zeroed tail) and `ifru_data` points at `value`, a live `struct ethtool_value` that outlives this call; SIOCETHTOOL reads and writes only those 8 bytes for ETHTOOL_[GS]GRO and ETHTOOL_[GS]TSO.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data)
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_SGRO)`: switches generic receive offload of
/// `ifname` on or off (what `ethtool -K <if> gro on|off` does).
pub(crate) fn set_gro(sock: BorrowedFd<'_>, ifname: &str, on: bool) -> io::Result<()> {
    ethtool_value(sock, ifname, ETHTOOL_SGRO, u32::from(on)).map(|_| ())
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GGRO)`: whether GRO is on for `ifname`.
pub(crate) fn gro(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<bool> {
    ethtool_value(sock, ifname, ETHTOOL_GGRO, 0).map(|v| v != 0)
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_STSO)`: switches TCP segmentation offload
/// of `ifname` on or off (what `ethtool -K <if> tso on|off` does).
pub(crate) fn set_tso(sock: BorrowedFd<'_>, ifname: &str, on: bool) -> io::Result<()> {
    ethtool_value(sock, ifname, ETHTOOL_STSO, u32::from(on)).map(|_| ())
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GTSO)`: whether TSO is on for `ifname`.
pub(crate) fn tso(sock: BorrowedFd<'_>, ifname: &str) -> io::Result<bool> {
    ethtool_value(sock, ifname, ETHTOOL_GTSO, 0).map(|v| v != 0)
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
