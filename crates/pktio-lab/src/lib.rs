//! The pktio network lab: two network namespaces, "gen" and "rx", joined by
//! a veth pair, built through netlink and removed on drop.
//!
//! Tests, examples and benchmarks of pktio run here, because the machine has
//! no NIC to spare and test traffic must never leave it. This crate does not
//! depend on the `pktio` library.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::UdpSocket;
//! pktio_lab::require_root!(Ok(()));
//! let lab = pktio_lab::Lab::builder().queues(1).gro(true).build()?;
//! let (gen, rx) = (lab.gen(), lab.rx());
//! let sock = rx.run(|| UdpSocket::bind(rx.addr().socket_addr(9000)))?;
//! let tx = gen.run(|| UdpSocket::bind(gen.addr().socket_addr(0)))?;
//! tx.send_to(b"ping", rx.addr().socket_addr(9000))?;
//! let mut buf = [0u8; 64];
//! let (n, from) = sock.recv_from(&mut buf)?;
//! println!("{n} bytes from {from}; rx counters {:?}", rx.stats());
//! # Ok(()) }
//! ```
//!
//! # What a lab is
//!
//! | | gen | rx |
//! |---|---|---|
//! | namespace ([`Host::name`]) | `gen` (anonymous) or `<lab>-gen` | `rx` or `<lab>-rx` |
//! | interface ([`Host::ifname`]) | `pg<pid>x<n>` or `vgen` | `pr<pid>x<n>` or `vrx` |
//! | address ([`Host::addr`]) | `198.18.<k>.1/24` | `198.18.<k>.2/24` |
//! | MAC ([`Host::mac`]) | `02:00:c6:12:<k>:01` | `02:00:c6:12:<k>:02` |
//!
//! - **Namespaces are anonymous** by default: a helper thread runs
//!   `unshare(CLONE_NEWNET)` and keeps an fd to `/proc/thread-self/ns/net`.
//!   Only this process holds them, so when it dies (even by `SIGKILL`) the
//!   kernel removes the namespaces and the veth in them. Both veth ends live
//!   in the lab's namespaces (the peer is created directly in the rx
//!   namespace with `IFLA_NET_NS_FD`): nothing ever appears in the root
//!   namespace.
//! - **Persistent labs** ([`LabBuilder::persistent`], `pktio lab up`) are
//!   bind-mounted at `/run/netns/<lab>-gen` and `/run/netns/<lab>-rx`, so
//!   `ip netns exec` and external tools (dpdk-testpmd, tcpdump) can use them,
//!   and [`Lab::open_persistent`] re-opens them; [`Lab::destroy_persistent`]
//!   removes them. Their interfaces are `vgen`/`vrx` and their subnet
//!   198.18.0.0/24, the same as the shell lab in `shared/lab/lab.sh`: the
//!   namespace names already make them unique, and a person typing
//!   commands remembers `vrx` better than `pr4711x3`.
//! - **Unique names**: anonymous interface names are built from the pid and
//!   a process-wide counter (15 characters at most), and every lab of a
//!   process gets its own /24 (`k` = counter mod 512, wrapping within
//!   198.18.0.0/15), so parallel tests never clash and their addresses
//!   differ even though each lab's namespaces would allow reuse.
//! - **Addresses only from 198.18.0.0/15** (RFC 2544 benchmarking): every
//!   address goes through [`LabAddr`], whose constructor refuses anything
//!   else; use it for destinations too ([`LabAddr::socket_addr`]).
//! - **Quiet links**: fixed, documented, locally administered MACs (bytes
//!   2-5 are the host's IPv4 address); static ARP entries (`NUD_PERMANENT`)
//!   on each side for the other, so no ARP request ever crosses the wire;
//!   `lo` up in each namespace; IPv6 off on both veth ends
//!   (`/proc/sys/net/ipv6/conf/default/disable_ipv6` in the fresh namespace
//!   before the veth exists, and `.../conf/<if>/disable_ipv6`, written from a
//!   thread inside the namespace), so no DAD, MLD or router solicitation
//!   lands in a test's counters or capture.
//! - **One queue by default**: [`LabBuilder::queues`] sets
//!   `IFLA_NUM_RX_QUEUES`/`IFLA_NUM_TX_QUEUES` on both ends (1 unless told
//!   otherwise, where the kernel would pick one per possible CPU and spread
//!   frames over queues a test does not watch).
//! - **GRO** ([`LabBuilder::gro`], [`Host::set_gro`]) is set with the
//!   legacy ethtool ioctl (`SIOCETHTOOL`/`ETHTOOL_SGRO`): one `ioctl`, where
//!   ethtool netlink would need a generic-netlink family lookup and a second
//!   message set. On a veth, GRO is what gives the receiving end a NAPI
//!   instance, which frames sent with `ndo_xdp_xmit` (`XDP_REDIRECT`,
//!   `XDP_TX` towards the peer) need to be delivered at all.
//!
//! # NAPI placement: who pays for the receive work
//!
//! On veth the receiving end's NAPI runs as softirq on the *sender's* CPU
//! ([`NapiPlacement::Softirq`], the default). [`Host::set_napi_placement`]
//! with [`NapiPlacement::Thread`] switches the end's NAPI to a kernel
//! thread (`napi/<if>-<id>`) and pins it, so the receiving core pays for
//! its own receive work, as with a NIC. The lab does this through the
//! `netdev` generic-netlink family (`napi-get`/`napi-set threaded`, Linux
//! 6.17+) from a socket inside the namespace: `/sys/class/net` shows the
//! namespace sysfs was mounted in, and the kernel reports each thread's pid
//! for this very device, so parallel labs with equal interface names never
//! mix up threads. Two prerequisites: the end must have NAPI (GRO on or an
//! XDP program attached; otherwise [`LabError::NoNapi`]), and frames from
//! sockets reach a GRO-only peer's NAPI only if the sending end has TSO off
//! ([`Host::set_tso`]); with TSO on they take the sender's backlog and the
//! thread never runs. The threads go away with the veth at teardown.
//!
//! # Working inside a namespace
//!
//! A namespace belongs to a thread. [`Host::run`] runs a closure on a scoped
//! thread that entered the namespace (`setns`); sockets created there
//! (AF_XDP, AF_PACKET, UDP) stay in the namespace and can be used from any
//! thread afterwards. [`Host::spawn`] is the `'static` variant,
//! [`Host::enter`] moves the current thread until its `!Send` guard drops,
//! and [`Host::command`] builds a [`std::process::Command`] whose child
//! enters the namespace (with its own `/sys`, like `ip netns exec`) and is
//! killed when the thread that spawned it dies ([`die_with_parent`], which
//! plain `Command`s can use too).
//!
//! # Teardown
//!
//! `Drop for Lab` deletes the veth (`RTM_DELLINK`), closes the namespace
//! fds and, for a persistent lab it owns, unmounts and removes the
//! `/run/netns` files. A built lab owns what it built; [`Lab::keep`] (used by
//! `pktio lab up`) and [`Lab::open_persistent`] leave persistent labs in
//! place. Errors during teardown are printed to stderr; drop never panics.
//! [`Lab::delete_link`] removes the veth early, for "interface vanished"
//! fault tests.
//!
//! # Privilege and skipping
//!
//! Building a lab needs `CAP_NET_ADMIN` and `CAP_SYS_ADMIN` (in practice:
//! root). Tests start with [`require_root!`], which prints
//! `SKIPPED <test>: needs root (...)` and returns when [`have_privilege`] is
//! false.
//!
//! # Netlink
//!
//! The lab talks to the kernel through the host layer, `pktio-host`: its
//! rtnetlink client (`netlink-packet-route` messages over a synchronous
//! `netlink-sys` socket: veth peers, `IFLA_NET_NS_FD`, queues, addresses,
//! neighbours, `IFLA_STATS64`), its `netdev` generic-netlink client (NAPI
//! placement), its ethtool ioctls (GRO, TSO) and its capability probe. A
//! netlink socket talks to the namespace of the thread that created it, so
//! each [`Host`] keeps one made inside its namespace. Kernel refusals become [`LabError::Netlink`] with
//! the operation named, the kernel's extended-ack text, and a hint
//! (`EPERM` → needs root, `EEXIST` → name clash, `ENODEV` → gone).
//!
//! # Deliberate API choices
//!
//! - [`Host::stats`] returns [`LinkStats`] directly (panicking with the
//!   netlink error if the query fails), as the lab's users asked for;
//!   [`Host::try_stats`] returns a `Result`, for fault tests where the link
//!   may be gone. [`Host::run`] likewise panics only if `setns` fails;
//!   [`Host::try_run`] returns that error.
//! - [`Host::enter`] returns `Result<NetNsGuard, LabError>`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod child;
mod error;
mod host;
mod lab;
mod link;
mod napi;
mod ns;
pub mod seccomp;
mod sys;

pub use addr::LabAddr;
pub use child::die_with_parent;
pub use error::{LabError, Result};
pub use host::Host;
pub use lab::{Lab, LabBuilder, Role, LAB_PREFIX_LEN, PERSISTENT_GEN_IFNAME, PERSISTENT_RX_IFNAME};
pub use link::{list_links, list_links_here, LinkInfo, LinkStats};
pub use napi::{NapiPlacement, NapiThread};
pub use ns::{enter_private_netns, NetNsGuard};

/// Whether this process may build a lab: its effective capability set
/// (`CapEff` in `/proc/self/status`) holds `CAP_NET_ADMIN` (links,
/// addresses) and `CAP_SYS_ADMIN` (`unshare`/`setns` of network namespaces,
/// bind mounts). Falls back to "effective uid is 0" if `/proc` cannot be
/// read.
pub fn have_privilege() -> bool {
    use pktio_host::caps::{self, Cap};
    match caps::missing(&[Cap::NET_ADMIN, Cap::SYS_ADMIN]) {
        Ok(missing) => missing.is_empty(),
        Err(_) => rustix::process::geteuid().is_root(),
    }
}

pub use pktio_host::netlink::route::fmt_mac;

/// Returns early from the calling test, printing
/// `SKIPPED <test>: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to build a lab`
/// to stderr, when [`have_privilege`] is false.
///
/// `require_root!()` returns `()`; `require_root!(value)` returns `value`,
/// for tests that return a `Result`: `pktio_lab::require_root!(Ok(()));`.
/// The test name is the enclosing function's path without the crate name,
/// which is what libtest calls the test (`tests::my_test`).
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!(())
    };
    ($ret:expr) => {
        if !$crate::have_privilege() {
            fn __pktio_lab_here() {}
            let name = ::std::any::type_name_of_val(&__pktio_lab_here);
            let name = name.strip_suffix("::__pktio_lab_here").unwrap_or(name);
            // Drop the crate name: what is left is libtest's test name.
            let name = name.split_once("::").map_or(name, |(_, rest)| rest);
            ::std::eprintln!(
                "SKIPPED {}: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to build a lab",
                name
            );
            return $ret;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Lab>();
        check::<Host>();
        check::<LabAddr>();
        check::<LabError>();
    }

    fn skipped_when_unprivileged() -> bool {
        require_root!(false);
        true
    }

    #[test]
    fn require_root_matches_have_privilege() {
        assert_eq!(skipped_when_unprivileged(), have_privilege());
    }
}
