//! [`Host`]: one side of a lab, a network namespace and the veth end in it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::addr::LabAddr;
use crate::error::{LabError, Result};
use crate::lab::Role;
use crate::link::{LinkInfo, LinkStats};
use crate::napi::{self, NapiPlacement, NapiThread};
use crate::ns::{self, NetNsGuard};
use crate::sys;
use pktio_host::ethtool;
use pktio_host::netlink::netdev::{NapiInfo, Netdev};
use pktio_host::netlink::route::Route;

/// A netlink socket shared by the two hosts of a lab (each one waits for
/// its peer's link state too).
pub(crate) type SharedNetlink = Arc<Mutex<Route>>;

/// Locks a netlink socket. A panic while it was held cannot leave it in a
/// state that matters: every request matches replies by sequence number.
pub(crate) fn lock(nl: &SharedNetlink) -> MutexGuard<'_, Route> {
    nl.lock().unwrap_or_else(|p| p.into_inner())
}

/// One side of a [`Lab`](crate::Lab): a network namespace and the veth end in it.
///
/// Work "in" the namespace runs on a thread that entered it: [`Host::run`]
/// (scoped, returns the result), [`Host::spawn`] (long-running),
/// [`Host::enter`] (moves the current thread until the guard drops) and
/// [`Host::command`] (a child process). Sockets created there stay in the
/// namespace and can be used from any thread afterwards.
#[derive(Debug)]
pub struct Host {
    pub(crate) role: Role,
    pub(crate) name: String,
    pub(crate) ns: Arc<OwnedFd>,
    pub(crate) nl: SharedNetlink,
    pub(crate) ifname: String,
    pub(crate) ifindex: u32,
    pub(crate) mac: [u8; 6],
    pub(crate) addr: LabAddr,
    pub(crate) prefix_len: u8,
    pub(crate) peer_addr: LabAddr,
    pub(crate) peer_mac: [u8; 6],
    /// The peer's netlink socket and ifindex (set once both hosts exist).
    pub(crate) peer_link: Option<(SharedNetlink, u32)>,
}

impl Host {
    pub(crate) fn nl(&self) -> MutexGuard<'_, Route> {
        lock(&self.nl)
    }

    pub(crate) fn what(&self) -> String {
        format!("{} in {}", self.ifname, self.name)
    }

    /// Polls `RTM_GETLINK` until the kernel's link-watch work has marked
    /// this veth end, and its peer if the peer is up, operationally up (and
    /// with that attached their qdiscs): before, frames sent on them are
    /// silently dropped. This normally takes well under a millisecond; it
    /// gives up after 10 s.
    pub(crate) fn wait_oper_up(&self) -> Result<()> {
        const LIMIT: Duration = Duration::from_secs(10);
        let start = Instant::now();
        loop {
            let me = LinkInfo::from_message(&self.nl().link(self.ifindex)?);
            let peer = match &self.peer_link {
                Some((nl, index)) => Some(LinkInfo::from_message(&lock(nl).link(*index)?)),
                None => None,
            };
            let peer_ready = peer.as_ref().map_or(true, |p| !p.up || p.oper_up);
            if (me.oper_up || peer.as_ref().is_some_and(|p| !p.up)) && peer_ready {
                return Ok(());
            }
            if start.elapsed() > LIMIT {
                return Err(LabError::sys(
                    format!(
                        "waiting for {} to become operationally up (IFLA_OPERSTATE)",
                        self.what()
                    ),
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    pub(crate) fn install_neighbour(&self) -> Result<()> {
        self.nl().add_neighbour(
            self.ifindex,
            self.peer_addr.ip(),
            self.peer_mac,
            &self.what(),
        )?;
        Ok(())
    }

    /// `"gen"` / `"rx"` for an anonymous lab, the namespace name
    /// (`"<lab>-gen"`, `"<lab>-rx"`, as under `/run/netns`) for a persistent one.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The veth end's name: `pg<pid>x<n>` / `pr<pid>x<n>` in an anonymous
    /// lab, `vgen` / `vrx` in a persistent one.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The veth end's interface index (in this namespace).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The veth end's MAC: `02:00:c6:12:<k>:01` (gen) / `:02` (rx) for
    /// subnet `198.18.<k>.0/24` (`02:00:c6:13:..` in 198.19.0.0/16): bytes 2-5
    /// are the host's IPv4 address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The veth end's IPv4 address: `198.18.<k>.1` (gen) / `.2` (rx).
    pub fn addr(&self) -> LabAddr {
        self.addr
    }

    /// Prefix length of [`addr`](Self::addr) (24).
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The other side's address (what a static ARP entry here points at).
    pub fn peer_addr(&self) -> LabAddr {
        self.peer_addr
    }

    /// The other side's MAC.
    pub fn peer_mac(&self) -> [u8; 6] {
        self.peer_mac
    }

    /// The network namespace (an `nsfs` fd), for `setns(2)` or
    /// [`list_links`](crate::list_links). `try_clone_to_owned` it to keep the
    /// namespace alive past the lab.
    pub fn netns_fd(&self) -> BorrowedFd<'_> {
        self.ns.as_fd()
    }

    /// Runs `f` on a scoped thread that entered this namespace
    /// (`setns(fd, CLONE_NEWNET)`) and returns its result. Sockets `f`
    /// creates belong to this namespace and can be used from any thread
    /// afterwards. A panic in `f` is resumed here.
    ///
    /// # Panics
    /// If the thread cannot be started or `setns` fails (only when the lab's
    /// privileges were lost); use [`try_run`](Self::try_run) to get that as an
    /// error.
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        match self.try_run(f) {
            Ok(r) => r,
            Err(e) => panic!("pktio-lab: cannot run in namespace {}: {e}", self.name),
        }
    }

    /// [`run`](Self::run), with thread start and `setns` failures returned.
    ///
    /// # Errors
    /// [`LabError::Sys`] naming the failed call.
    pub fn try_run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        ns::in_ns(self.ns.as_fd(), &self.name, f)
    }

    /// Starts a thread (named `lab-<name>`) that enters this namespace and
    /// runs `f`, for long-running work (a receiver loop, a generator).
    ///
    /// # Panics
    /// Like [`std::thread::spawn`], if the thread cannot be started. If
    /// `setns` fails, the spawned thread panics and `join` returns the error
    /// message.
    pub fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let ns = Arc::clone(&self.ns);
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("lab-{name}"))
            .spawn(move || {
                if let Err(e) = sys::setns_net(ns.as_fd()) {
                    panic!("pktio-lab: cannot enter network namespace {name} (setns): {e}");
                }
                drop(ns);
                f()
            })
            .unwrap_or_else(|e| panic!("pktio-lab: cannot start a thread: {e}"))
    }

    /// Moves the current thread into this namespace until the returned
    /// guard is dropped (`setns`, then `setns` back), like aya's
    /// `NetNsGuard`. The guard is `!Send`. Prefer [`run`](Self::run) in
    /// multi-threaded code: everything this thread does meanwhile (including
    /// DNS lookups, opening `/proc/net`) happens in the lab.
    ///
    /// # Errors
    /// [`LabError::Sys`] if `/proc/thread-self/ns/net` cannot be opened or
    /// `setns` fails.
    pub fn enter(&self) -> Result<NetNsGuard> {
        NetNsGuard::enter(self.ns.as_fd(), &self.name)
    }

    /// A [`Command`] for `program` whose child runs in this namespace: a
    /// `pre_exec` hook does `setns(fd, CLONE_NEWNET)`, then, like
    /// `ip netns exec`, unshares the mount namespace (mounts made slave, so
    /// nothing leaks back) and mounts a fresh sysfs on `/sys` so
    /// `/sys/class/net` shows the lab's interfaces. Failures come back from
    /// `spawn`/`status`/`output`.
    ///
    /// The child dies with its parent: it gets `SIGKILL` when the thread
    /// that spawned it exits, or the whole process dies, `SIGKILL` included
    /// ([`die_with_parent`](crate::die_with_parent), whose caveats apply:
    /// spawn from a thread that outlives the child).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = sys::command_in_netns(program.as_ref(), Arc::clone(&self.ns));
        crate::child::die_with_parent(&mut cmd);
        cmd
    }

    /// The veth end's counters (`IFLA_STATS64` via `RTM_GETLINK`).
    ///
    /// # Panics
    /// If the netlink query fails, e.g. after [`Lab::delete_link`](crate::Lab::delete_link); use
    /// [`try_stats`](Self::try_stats) to get that as an error.
    pub fn stats(&self) -> LinkStats {
        match self.try_stats() {
            Ok(s) => s,
            Err(e) => panic!("pktio-lab: reading the counters of {}: {e}", self.what()),
        }
    }

    /// [`stats`](Self::stats), with failures returned.
    ///
    /// # Errors
    /// [`LabError::Netlink`] (`ENODEV` once the link is gone).
    pub fn try_stats(&self) -> Result<LinkStats> {
        Ok(self.link_info()?.stats)
    }

    /// Everything `RTM_GETLINK` says about the veth end: state, MTU, queue
    /// counts (`IFLA_NUM_RX_QUEUES`/`IFLA_NUM_TX_QUEUES`), counters.
    ///
    /// # Errors
    /// [`LabError::Netlink`] (`ENODEV` once the link is gone).
    pub fn link_info(&self) -> Result<LinkInfo> {
        let m = self.nl().link(self.ifindex)?;
        Ok(LinkInfo::from_message(&m))
    }

    /// Sets the veth end up or down (`RTM_SETLINK`, `IFF_UP`). Setting it up
    /// also re-installs the static ARP entry for the peer, which the kernel
    /// flushes when a link goes down, and, if the peer is up, waits until
    /// both ends are operationally up so the next frame is not dropped.
    ///
    /// # Errors
    /// [`LabError::Netlink`].
    pub fn link_up(&self, up: bool) -> Result<()> {
        self.nl().set_up(self.ifindex, up, &self.what())?;
        if up {
            self.install_neighbour()?;
            self.wait_oper_up()?;
        }
        Ok(())
    }

    /// Sets the veth end's MTU (`RTM_SETLINK`, `IFLA_MTU`).
    ///
    /// # Errors
    /// [`LabError::Netlink`] (`EINVAL` outside 68..=65535, or too large for
    /// an attached XDP program).
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        Ok(self.nl().set_mtu(self.ifindex, mtu, &self.what())?)
    }

    /// Switches GRO (and with it the veth's NAPI instance, see
    /// [`LabBuilder::gro`](crate::LabBuilder::gro)) on or off: `ioctl(SIOCETHTOOL, ETHTOOL_SGRO)`.
    ///
    /// # Errors
    /// [`LabError::Sys`].
    pub fn set_gro(&self, on: bool) -> Result<()> {
        set_gro_in(self.ns.as_fd(), &self.name, &self.ifname, on)
    }

    /// Whether GRO is on: `ioctl(SIOCETHTOOL, ETHTOOL_GGRO)`.
    ///
    /// # Errors
    /// [`LabError::Sys`].
    pub fn gro(&self) -> Result<bool> {
        let op = || format!("reading GRO of {} (SIOCETHTOOL ETHTOOL_GGRO)", self.what());
        self.try_run(|| -> Result<bool> {
            let sock = ioctl_socket().map_err(|e| LabError::sys(op(), e))?;
            ethtool::gro(sock.as_fd(), &self.ifname).map_err(|e| LabError::sys(op(), e))
        })?
    }

    /// Switches TCP segmentation offload of this veth end on or off:
    /// `ioctl(SIOCETHTOOL, ETHTOOL_STSO)` (all TSO flags).
    ///
    /// Why it matters for NAPI placement: veth hands a frame sent from a
    /// socket to the *peer's* NAPI only if the frame could be aggregated
    /// there (`veth_skb_is_eligible_for_gro`), which it decides from the
    /// sending end: with TSO on (the default) frames from ordinary sockets
    /// go through the sender CPU's backlog instead, and the peer's NAPI
    /// thread never sees them (measured: 0 ticks for the pinned thread
    /// under a UDP flood). Attaching an XDP program to the peer clears
    /// this end's software GSO features by itself (`veth_xdp_set`); for
    /// socket traffic into a GRO-only peer, switch TSO off on the sending
    /// end.
    ///
    /// # Errors
    /// [`LabError::Sys`].
    pub fn set_tso(&self, on: bool) -> Result<()> {
        let op = || {
            format!(
                "setting TSO {} on {} (SIOCETHTOOL ETHTOOL_STSO)",
                if on { "on" } else { "off" },
                self.what()
            )
        };
        self.try_run(|| -> Result<()> {
            let sock = ioctl_socket().map_err(|e| LabError::sys(op(), e))?;
            ethtool::set_tso(sock.as_fd(), &self.ifname, on).map_err(|e| LabError::sys(op(), e))
        })?
    }

    /// Whether TSO is on: `ioctl(SIOCETHTOOL, ETHTOOL_GTSO)`.
    ///
    /// # Errors
    /// [`LabError::Sys`].
    pub fn tso(&self) -> Result<bool> {
        let op = || format!("reading TSO of {} (SIOCETHTOOL ETHTOOL_GTSO)", self.what());
        self.try_run(|| -> Result<bool> {
            let sock = ioctl_socket().map_err(|e| LabError::sys(op(), e))?;
            ethtool::tso(sock.as_fd(), &self.ifname).map_err(|e| LabError::sys(op(), e))
        })?
    }

    /// The NAPI instances of the veth end (`netdev` `napi-get`, from a
    /// generic-netlink socket opened in this namespace).
    fn napis(&self) -> Result<Vec<NapiInfo>> {
        let napis = self.try_run(|| Netdev::open()?.napis(self.ifindex, &self.what()))?;
        Ok(napis?)
    }

    /// Switches threaded NAPI on or off for every NAPI instance of the veth
    /// end (`netdev` `napi-set`, `threaded`). On, each instance gets a
    /// `napi/<ifname>-<napi id>` kernel thread that does the receive work
    /// the sender's CPU did as softirq; off stops the threads and restores
    /// that default. Deleting the veth (lab teardown) removes the threads
    /// with it.
    ///
    /// A veth has NAPI only while GRO is on ([`set_gro`](Self::set_gro)) or
    /// an XDP program is attached, so call this after either; switching GRO
    /// off (with no XDP program) deletes the instance and its thread, and
    /// switching it on again makes a new, unthreaded one. Off on a veth
    /// without NAPI is not an error (there is nothing to undo).
    ///
    /// # Errors
    /// [`LabError::NoNapi`] when switching on a veth end without NAPI;
    /// [`LabError::Unsupported`] on kernels before 6.9 (no `napi-get`);
    /// [`LabError::Netlink`].
    pub fn set_napi_threaded(&self, on: bool) -> Result<()> {
        let what = self.what();
        let sysfs_fallback = self.try_run(|| -> Result<bool> {
            let mut genl = Netdev::open()?;
            let napis = genl.napis(self.ifindex, &what)?;
            if napis.is_empty() {
                return if on { Err(self.no_napi()) } else { Ok(false) };
            }
            if napis.iter().all(|n| n.threaded.is_none()) {
                return Ok(true); // 6.9..6.16: no per-NAPI `threaded`
            }
            for n in &napis {
                if n.threaded != Some(on) {
                    genl.set_napi_threaded(n.id, on, &what)?;
                }
            }
            Ok(false)
        })??;
        if sysfs_fallback {
            self.write_sysfs_threaded(on)?;
        }
        // Check that the kernel did it: a thread per instance, or none.
        let napis = self.napis()?;
        if let Some(n) = napis.iter().find(|n| n.pid.is_some() != on) {
            return Err(LabError::Protocol {
                op: format!(
                    "switching threaded NAPI {} on {what}",
                    if on { "on" } else { "off" }
                ),
                detail: format!(
                    "NAPI {} still {} a thread afterwards",
                    n.id,
                    if on { "lacks" } else { "has" }
                ),
            });
        }
        Ok(())
    }

    /// The NAPI threads of the veth end (empty unless threaded NAPI is on):
    /// pid and NAPI id from `netdev` `napi-get`, name from
    /// `/proc/<pid>/comm`, CPUs from `sched_getaffinity`.
    ///
    /// # Errors
    /// [`LabError::Unsupported`] before Linux 6.9; [`LabError::Netlink`];
    /// [`LabError::Sys`] if `/proc/<pid>` cannot be read.
    pub fn napi_threads(&self) -> Result<Vec<NapiThread>> {
        self.napis()?
            .iter()
            .filter_map(|n| n.pid.map(|pid| napi::describe(n.id, pid)))
            .collect()
    }

    /// Pins every NAPI thread of the veth end to `cpu`
    /// (`sched_setaffinity`), so that core pays for this end's receive work,
    /// and returns the threads as they are afterwards.
    ///
    /// # Errors
    /// [`LabError::NapiNotThreaded`] (or [`LabError::NoNapi`]) when there is
    /// no thread to pin; [`LabError::InvalidConfig`] if `cpu` is not
    /// online; [`LabError::Sys`].
    pub fn pin_napi_threads(&self, cpu: usize) -> Result<Vec<NapiThread>> {
        let napis = self.napis()?;
        if napis.is_empty() {
            return Err(self.no_napi());
        }
        let pids: Vec<(u32, u32)> = napis
            .iter()
            .filter_map(|n| n.pid.map(|p| (n.id, p)))
            .collect();
        if pids.is_empty() {
            return Err(LabError::NapiNotThreaded {
                ifname: self.ifname.clone(),
                ns: self.name.clone(),
            });
        }
        pids.iter()
            .map(|&(id, pid)| {
                napi::pin(pid, cpu)?;
                napi::describe(id, pid)
            })
            .collect()
    }

    /// Applies a [`NapiPlacement`] to the veth end and returns the NAPI
    /// threads it now has (none for [`NapiPlacement::Softirq`]), for a
    /// report. Call it after GRO is on or the XDP program is attached, and
    /// again after anything that recreates the NAPI instance (GRO off and
    /// on).
    ///
    /// # Errors
    /// Those of [`set_napi_threaded`](Self::set_napi_threaded) and
    /// [`pin_napi_threads`](Self::pin_napi_threads).
    pub fn set_napi_placement(&self, placement: NapiPlacement) -> Result<Vec<NapiThread>> {
        match placement {
            NapiPlacement::Softirq => {
                self.set_napi_threaded(false)?;
                Ok(Vec::new())
            }
            NapiPlacement::Thread { cpu } => {
                self.set_napi_threaded(true)?;
                match cpu {
                    Some(cpu) => self.pin_napi_threads(cpu),
                    None => self.napi_threads(),
                }
            }
        }
    }

    fn no_napi(&self) -> LabError {
        LabError::NoNapi {
            ifname: self.ifname.clone(),
            ns: self.name.clone(),
        }
    }

    /// Writes the device-wide `/sys/class/net/<if>/threaded` from a child
    /// process that mounted its own sysfs inside this namespace (see
    /// [`command`](Self::command)): `/sys` of this process shows the
    /// namespace sysfs was mounted in, not the lab's.
    pub(crate) fn write_sysfs_threaded(&self, on: bool) -> Result<()> {
        let value = if on { "1" } else { "0" };
        let op = || {
            format!(
                "writing {value} to /sys/class/net/{}/threaded in {} (from a child with its own sysfs)",
                self.ifname, self.name
            )
        };
        let out = self
            .command("/bin/sh")
            .args([
                "-c",
                r#"echo "$1" > "/sys/class/net/$2/threaded""#,
                "pktio-lab",
            ])
            .args([value, self.ifname.as_str()])
            .output()
            .map_err(|e| LabError::sys(op(), e))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // sh reports EIO as "I/O error": the kernel's answer while the
        // veth has no NAPI.
        if err.contains("I/O error") || err.contains("not supported") {
            return Err(self.no_napi());
        }
        Err(LabError::sys(
            op(),
            std::io::Error::other(format!("{}: {err}", out.status)),
        ))
    }

    /// Lists every interface of this namespace (`RTM_GETLINK` dump).
    ///
    /// # Errors
    /// [`LabError::Netlink`].
    pub fn links(&self) -> Result<Vec<LinkInfo>> {
        Ok(self
            .nl()
            .links()?
            .iter()
            .map(LinkInfo::from_message)
            .collect())
    }

    /// The static (`NUD_PERMANENT`) ARP entries on the veth end, as
    /// (address, link-layer address) pairs (`RTM_GETNEIGH` dump).
    ///
    /// # Errors
    /// [`LabError::Netlink`].
    pub fn permanent_neighbours(&self) -> Result<Vec<(std::net::Ipv4Addr, Vec<u8>)>> {
        Ok(self.nl().permanent_neighbours(self.ifindex)?)
    }
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_SGRO)` on a socket created in the namespace.
pub(crate) fn set_gro_in(ns: BorrowedFd<'_>, ns_name: &str, ifname: &str, on: bool) -> Result<()> {
    ns::in_ns(ns, ns_name, || -> Result<()> {
        let op = || {
            format!(
                "setting GRO {} on {ifname} in {ns_name} (SIOCETHTOOL ETHTOOL_SGRO)",
                if on { "on" } else { "off" }
            )
        };
        let sock = ioctl_socket().map_err(|e| LabError::sys(op(), e))?;
        ethtool::set_gro(sock.as_fd(), ifname, on).map_err(|e| LabError::sys(op(), e))
    })?
}

pub(crate) fn ioctl_socket() -> io::Result<OwnedFd> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use crate::{Lab, LabError};

    /// The fallback for kernels without per-NAPI `threaded` (6.9 to 6.16):
    /// the device-wide sysfs file, written from a child with its own sysfs.
    /// This kernel would never take that path by itself, so call it
    /// directly.
    #[test]
    fn sysfs_threaded_fallback() {
        crate::require_root!();
        let lab = Lab::new().unwrap();
        let rx = lab.rx();
        // Before GRO the kernel answers EIO: no NAPI yet.
        let e = rx.write_sysfs_threaded(true).unwrap_err();
        assert!(matches!(e, LabError::NoNapi { .. }), "{e:?}");
        rx.set_gro(true).unwrap();
        rx.write_sysfs_threaded(true).unwrap();
        let threads = rx.napi_threads().unwrap();
        assert_eq!(threads.len(), 1, "{threads:?}");
        assert!(threads[0]
            .name
            .starts_with(&format!("napi/{}-", rx.ifname())));
        rx.write_sysfs_threaded(false).unwrap();
        assert!(rx.napi_threads().unwrap().is_empty());
    }
}
