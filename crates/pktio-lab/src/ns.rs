//! Network namespaces: creating them (anonymous or bind-mounted under
//! `/run/netns`), running code inside them, and the [`NetNsGuard`].
//!
//! A network namespace belongs to a *thread* (`setns(2)`/`unshare(2)` act on
//! the calling thread only), so the lab never switches the caller's thread
//! behind its back: it runs namespace work on short-lived helper threads.
//! What those threads create (sockets, netlink sockets) stays bound to the
//! namespace and can be used from any thread afterwards.

use std::fs;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::sys;
use pktio_host::netlink::route::Route;

/// Where `ip netns` keeps its named namespaces.
pub(crate) const NETNS_RUN_DIR: &str = "/run/netns";

/// `open("/proc/thread-self/ns/net", O_RDONLY|O_CLOEXEC)`: the calling
/// thread's network namespace.
pub(crate) fn open_current() -> Result<OwnedFd> {
    fs::File::open("/proc/thread-self/ns/net")
        .map(OwnedFd::from)
        .map_err(|e| LabError::sys("opening /proc/thread-self/ns/net", e))
}

/// Opens a bind-mounted namespace file such as `/run/netns/pktio-gen`, and
/// checks (`fstatfs`, `NSFS_MAGIC`) that it really is a namespace and not a
/// stale empty file.
pub(crate) fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let fd = OwnedFd::from(fs::File::open(path)?);
    let st = rustix::fs::fstatfs(&fd)?;
    // f_type's integer type differs between targets.
    #[allow(clippy::unnecessary_cast)]
    if st.f_type as i64 != libc::NSFS_MAGIC as i64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a mounted namespace (stale file)", path.display()),
        ));
    }
    Ok(fd)
}

/// Runs `f` on a scoped helper thread that first entered the network
/// namespace `ns` (`setns(ns, CLONE_NEWNET)`). A panic in `f` is resumed in
/// the caller.
///
/// # Errors
/// [`LabError::Sys`] if the thread cannot be started or `setns` fails.
pub(crate) fn in_ns<F, R>(ns: BorrowedFd<'_>, what: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name(format!("lab-{what}"))
            .spawn_scoped(s, move || {
                sys::setns_net(ns).map_err(|e| {
                    LabError::sys(format!("entering network namespace {what} (setns)"), e)
                })?;
                Ok(f())
            })
            .map_err(|e| LabError::sys("starting a lab helper thread", e))?;
        match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A freshly created network namespace: its fd and a netlink socket in it.
#[derive(Debug)]
pub(crate) struct NewNs {
    pub fd: OwnedFd,
    pub nl: Route,
}

/// Creates a new network namespace on a helper thread
/// (`unshare(CLONE_NEWNET)`), keeps an fd to it, and, if `mount_at` is given,
/// bind-mounts it there (that file must already exist). In the new namespace
/// it turns IPv6 off for interfaces created from now on
/// (`net.ipv6.conf.default.disable_ipv6 = 1`) and brings `lo` up.
pub(crate) fn create(what: &str, mount_at: Option<&Path>) -> Result<NewNs> {
    let what = what.to_string();
    let mount_at = mount_at.map(Path::to_path_buf);
    let h = std::thread::Builder::new()
        .name(format!("lab-new-{what}"))
        .spawn(move || -> Result<NewNs> {
            sys::unshare_net().map_err(|e| {
                LabError::sys(
                    format!("creating network namespace {what} (unshare CLONE_NEWNET)"),
                    e,
                )
            })?;
            let fd = open_current()?;
            if let Some(path) = &mount_at {
                rustix::mount::mount_bind("/proc/thread-self/ns/net", path).map_err(|e| {
                    LabError::sys(
                        format!(
                            "bind-mounting network namespace {what} at {}",
                            path.display()
                        ),
                        e.into(),
                    )
                })?;
            }
            write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")?;
            let mut nl = Route::new()?;
            let lo = nl.link_by_name("lo")?;
            nl.set_up(lo.header.index, true, &format!("lo in {what}"))?;
            Ok(NewNs { fd, nl })
        })
        .map_err(|e| LabError::sys("starting a lab helper thread", e))?;
    match h.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Moves the calling thread into a new, private network namespace
/// (`unshare(CLONE_NEWNET)`) and brings its loopback up (`RTM_SETLINK`), for
/// work that needs a network of its own but no veth (a loopback benchmark).
///
/// Threads the caller spawns afterwards start in the same namespace; it
/// disappears when the last of them ends. The calling thread cannot go back:
/// call this on a thread of its own. Needs `CAP_SYS_ADMIN`.
///
/// # Errors
/// [`LabError::Sys`] when `unshare` fails (`EPERM` without the
/// capability), [`LabError::Netlink`] when `lo` cannot be brought up.
pub fn enter_private_netns() -> Result<()> {
    sys::unshare_net().map_err(|e| {
        LabError::sys(
            "creating a private network namespace (unshare CLONE_NEWNET)",
            e,
        )
    })?;
    let mut nl = Route::new()?;
    let lo = nl.link_by_name("lo")?;
    Ok(nl.set_up(lo.header.index, true, "lo in the private namespace")?)
}

/// Writes a sysctl through procfs in the calling thread's network namespace
/// (files under `/proc/sys/net` resolve to the namespace of the thread that
/// opens them). A missing file (kernel without IPv6) is not an error.
/// `key` as [`pktio_host::procfs::sysctl_path`] takes it.
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<()> {
    match pktio_host::procfs::write_sysctl(key, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::sys(
            format!(
                "writing {value} to {}",
                pktio_host::procfs::sysctl_path(key).display()
            ),
            e,
        )),
    }
}

/// Makes `/run/netns` exist and be a shared mount point, as `ip netns add`
/// does, so namespace mounts made there are seen by other mount namespaces.
pub(crate) fn prepare_run_dir() -> Result<()> {
    use rustix::mount::MountPropagationFlags as P;
    fs::create_dir_all(NETNS_RUN_DIR)
        .map_err(|e| LabError::sys(format!("creating {NETNS_RUN_DIR}"), e))?;
    let shared = || rustix::mount::mount_change(NETNS_RUN_DIR, P::SHARED | P::REC);
    match shared() {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => {
            // Not a mount point yet: bind it onto itself first.
            rustix::mount::mount_bind_recursive(NETNS_RUN_DIR, NETNS_RUN_DIR)
                .and_then(|()| shared())
                .map_err(|e| {
                    LabError::sys(format!("making {NETNS_RUN_DIR} a shared mount"), e.into())
                })
        }
        Err(e) => Err(LabError::sys(
            format!("making {NETNS_RUN_DIR} a shared mount"),
            e.into(),
        )),
    }
}

/// `/run/netns/<name>`.
pub(crate) fn run_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Removes a bind-mounted namespace: `umount2(path, MNT_DETACH)` then
/// `unlink(path)`. Missing files and non-mounts are fine.
pub(crate) fn remove_mount(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(LabError::sys(
                format!("unmounting {}", path.display()),
                e.into(),
            ))
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::sys(format!("removing {}", path.display()), e)),
    }
}

/// Moves the current thread into a network namespace until dropped; made by
/// [`Host::enter`](crate::Host::enter).
///
/// The guard is `!Send`: a namespace belongs to a thread, and the guard must
/// restore the thread it was created on. Dropping it runs
/// `setns(old, CLONE_NEWNET)`; a failure is printed to stderr (a `Drop`
/// cannot return it) and leaves the thread in the lab's namespace.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let lab = pktio_lab::Lab::new().unwrap();
/// needs_send(lab.rx().enter().unwrap()); // a guard cannot change threads
/// ```
#[derive(Debug)]
#[must_use = "the thread goes back to its old namespace when the guard is dropped"]
pub struct NetNsGuard {
    old: OwnedFd,
    _not_send: PhantomData<*const ()>,
}

impl NetNsGuard {
    pub(crate) fn enter(ns: BorrowedFd<'_>, what: &str) -> Result<Self> {
        let old = open_current()?;
        sys::setns_net(ns)
            .map_err(|e| LabError::sys(format!("entering network namespace {what} (setns)"), e))?;
        Ok(NetNsGuard {
            old,
            _not_send: PhantomData,
        })
    }
}

impl Drop for NetNsGuard {
    fn drop(&mut self) {
        if let Err(e) = sys::setns_net(self.old.as_fd()) {
            eprintln!(
                "pktio-lab: could not move this thread back to its old network namespace (setns): {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_namespace_has_its_own_loopback_up() {
        crate::require_root!();
        let ino = |p: &str| fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let outer = ino("/proc/thread-self/ns/net").unwrap();
        let inner = std::thread::spawn(move || {
            enter_private_netns().unwrap();
            // lo is up: 127.0.0.1 answers to itself.
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(b"x", s.local_addr().unwrap()).unwrap();
            let mut b = [0u8; 1];
            s.recv(&mut b).unwrap();
            ino("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
        assert_ne!(inner, outer, "the thread moved to a new namespace");
        assert_eq!(ino("/proc/thread-self/ns/net").unwrap(), outer);
    }
}
