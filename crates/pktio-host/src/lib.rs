//! # pktio-host: what pktio knows about the host it runs on
//!
//! The one place where pktio, its lab and its doctor ask the kernel about
//! the host: netlink (rtnetlink, generic netlink, sock_diag), the ethtool
//! ioctls, capabilities, `/proc` and `/sys`, CPU pinning and the EBUSY
//! retry policy.
#![deny(unsafe_code)]
