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
use crate::netlink::Netlink;
use crate::ns::{self, NetNsGuard};
use crate::sys;

/// A netlink socket shared by the two hosts of a lab (each one waits for
/// its peer's link state too).
pub(crate) type SharedNetlink = Arc<Mutex<Netlink>>;

/// Locks a netlink socket. A panic while it was held cannot leave it in a
/// state that matters: every request matches replies by sequence number.
pub(crate) fn lock(nl: &SharedNetlink) -> MutexGuard<'_, Netlink> {
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
    pub(crate) fn nl(&self) -> MutexGuard<'_, Netlink> {
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
        )
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
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        sys::command_in_netns(program.as_ref(), Arc::clone(&self.ns))
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
        self.nl().set_mtu(self.ifindex, mtu, &self.what())
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
            sys::gro(sock.as_fd(), &self.ifname).map_err(|e| LabError::sys(op(), e))
        })?
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
        self.nl().permanent_neighbours(self.ifindex)
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
        sys::set_gro(sock.as_fd(), ifname, on).map_err(|e| LabError::sys(op(), e))
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
