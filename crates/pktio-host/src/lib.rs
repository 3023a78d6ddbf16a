//! # pktio-host: what pktio knows about the host it runs on
//!
//! The one place where pktio, its lab and its doctor ask the kernel about
//! the host. Each question has one implementation here:
//!
//! | module | what | kernel interface |
//! |---|---|---|
//! | [`netlink`] | the netlink transport ([`netlink::NlSocket`]: one request, replies to the ACK or `NLMSG_DONE`, `NLMSG_ERROR` with the extended-ack message, interrupted dumps sent again) and the attribute reader/writer ([`netlink::Attrs`], [`netlink::Attr`]) | `AF_NETLINK` |
//! | [`netlink::route`] | links (list, look up, veth pairs, up/down, MTU, state and counters), IPv4 addresses, neighbours | rtnetlink via `netlink-packet-route` |
//! | [`netlink::genl`] | generic-netlink family lookup and requests | `NETLINK_GENERIC` |
//! | [`netlink::netdev`] | XDP/AF_XDP features (`dev-get`), NAPI instances and threaded NAPI (`napi-get`, `napi-set`), per-queue counters (`qstats-get`) | `netdev` family |
//! | [`netlink::ethtool`] | `ethtool -l/-g/-c/-k/-x` readers and `-G` | `ethtool` family |
//! | [`netlink::sock_diag`] | the AF_XDP sockets of a namespace (`ss --xdp`) | `NETLINK_SOCK_DIAG`, `xsk_diag` |
//! | [`ethtool`] | driver info, channels, GRO/TSO switches, `ethtool -S` counters | `ioctl(SIOCETHTOOL)` |
//! | [`bytes`] | checked integer reads from kernel and file buffers (never a panic) | — |
//! | [`caps`] | the effective capabilities ([`caps::effective`]) and which of a required set are missing ([`caps::missing`]) | `/proc/PID/status` |
//! | [`procfs`] | sysctls, `/proc/PID/status` fields, a process's name and start time | `/proc` |
//! | [`sysfs`] | `/sys/class/net/<if>/<attr>`, online CPUs | `/sys` |
//! | [`iface`] | every address of every interface, CPU clocks, the UTC offset | `getifaddrs(3)`, `clock_gettime`, `localtime_r(3)` |
//! | [`cpu`] | pinning threads ([`cpu::pin_current_thread`]), affinities, CPU masks and lists | `sched_setaffinity` |
//! | [`retry`] | the EBUSY retry policy ([`retry::BusyRetry`]): retry until a deadline, with a backoff, on a clock tests can fake | — |
//! | [`skip`] | the skip policy of privileged tests ([`skip_unless!`]): skip, saying so, only for a capability the process lacks | [`caps`] |
//!
//! Netlink errors are [`HostError`]s naming the operation (with the
//! kernel's extended-ack text); the file and ioctl readers return
//! [`std::io::Result`]. Every netlink socket and ethtool ioctl works in the
//! network namespace of the thread that opened its socket.
//!
//! # Safety
//!
//! `#![deny(unsafe_code)]` everywhere but the private `sys` module, which
//! holds the `SIOCETHTOOL` ioctl (behind a typed interface), `getifaddrs`
//! and `localtime_r`; its module docs argue each `unsafe` block.
#![deny(unsafe_code)]

pub mod bytes;
pub mod caps;
pub mod cpu;
mod error;
pub mod ethtool;
pub mod idlist;
pub mod iface;
pub mod netlink;
pub mod procfs;
pub mod retry;
pub mod skip;
mod sys;
pub mod sysfs;

pub use error::{HostError, Result};
