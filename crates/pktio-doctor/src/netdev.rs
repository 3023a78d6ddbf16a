//! netdev generic netlink (Linux 6.3+): what XDP and AF_XDP an interface
//! supports (`NETDEV_CMD_DEV_GET`), and per-queue packet counters
//! (`NETDEV_CMD_QSTATS_GET`, Linux 6.10+, drivers that implement them).
//!
//! Constants from `include/uapi/linux/netdev.h`.

use std::collections::BTreeMap;
use std::io;

use netlink_packet_core::DecodeError;

use super::netlink::{Attr, Attrs, Nl};

/// Family name registered by the kernel.
pub const FAMILY: &str = "netdev";
const VERSION: u8 = 1;

const CMD_DEV_GET: u8 = 1;
const CMD_QSTATS_GET: u8 = 12;

const A_DEV_IFINDEX: u16 = 1;
const A_DEV_XDP_FEATURES: u16 = 3;
const A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const A_DEV_XSK_FEATURES: u16 = 6;

const A_QSTATS_IFINDEX: u16 = 1;
const A_QSTATS_QUEUE_TYPE: u16 = 2;
const A_QSTATS_QUEUE_ID: u16 = 3;
const A_QSTATS_SCOPE: u16 = 4;
const A_QSTATS_RX_PACKETS: u16 = 8;
const QUEUE_TYPE_RX: u64 = 0;
const QSTATS_SCOPE_QUEUE: u32 = 1;

/// `NETDEV_XDP_ACT_*` bits.
pub mod xdp_act {
    /// XDP_ABORTED/DROP/PASS/TX in the driver: native XDP.
    pub const BASIC: u64 = 1;
    /// XDP_REDIRECT (what steering into an AF_XDP socket uses).
    pub const REDIRECT: u64 = 2;
    /// `ndo_xdp_xmit`: can be the target of a redirect.
    pub const NDO_XMIT: u64 = 4;
    /// AF_XDP zero-copy.
    pub const XSK_ZEROCOPY: u64 = 8;
    /// Offload to the NIC.
    pub const HW_OFFLOAD: u64 = 16;
    /// Multi-buffer (frames larger than one buffer) on receive.
    pub const RX_SG: u64 = 32;
    /// Multi-buffer on `ndo_xdp_xmit`.
    pub const NDO_XMIT_SG: u64 = 64;
}

/// What the device can do with XDP and AF_XDP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevFeatures {
    /// `NETDEV_XDP_ACT_*` bits.
    pub xdp: u64,
    /// Most fragments per packet in zero-copy multi-buffer mode.
    pub zc_max_segs: Option<u32>,
    /// `NETDEV_XDP_RX_METADATA_*` bits (timestamp 1, hash 2, VLAN tag 4).
    pub rx_metadata: Option<u64>,
    /// `NETDEV_XSK_FLAGS_*` bits (TX timestamp 1, TX checksum 2, launch time 4).
    pub xsk: Option<u64>,
}

impl DevFeatures {
    /// Native (driver) XDP with redirect: what AF_XDP needs for speed.
    pub fn native(&self) -> bool {
        self.xdp & (xdp_act::BASIC | xdp_act::REDIRECT) == (xdp_act::BASIC | xdp_act::REDIRECT)
    }
    /// AF_XDP zero-copy.
    pub fn zero_copy(&self) -> bool {
        self.xdp & xdp_act::XSK_ZEROCOPY != 0
    }
    /// Multi-buffer receive.
    pub fn rx_sg(&self) -> bool {
        self.xdp & xdp_act::RX_SG != 0
    }
    /// Names of the RX metadata kinds.
    pub fn rx_metadata_names(&self) -> Vec<&'static str> {
        names(
            self.rx_metadata.unwrap_or(0),
            &[(1, "timestamp"), (2, "hash"), (4, "vlan-tag")],
        )
    }
    /// Names of the AF_XDP TX metadata kinds.
    pub fn xsk_names(&self) -> Vec<&'static str> {
        names(
            self.xsk.unwrap_or(0),
            &[
                (1, "tx-timestamp"),
                (2, "tx-checksum"),
                (4, "tx-launch-time"),
            ],
        )
    }
    /// Names of the XDP action bits.
    pub fn xdp_names(&self) -> Vec<&'static str> {
        names(
            self.xdp,
            &[
                (xdp_act::BASIC, "basic"),
                (xdp_act::REDIRECT, "redirect"),
                (xdp_act::NDO_XMIT, "ndo-xmit"),
                (xdp_act::XSK_ZEROCOPY, "xsk-zerocopy"),
                (xdp_act::HW_OFFLOAD, "hw-offload"),
                (xdp_act::RX_SG, "rx-sg"),
                (xdp_act::NDO_XMIT_SG, "ndo-xmit-sg"),
            ],
        )
    }
}

fn names(bits: u64, table: &[(u64, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Parses a `NETDEV_CMD_DEV_GET` reply.
///
/// # Errors
/// Malformed attributes, or a reply without `xdp-features`.
pub fn parse_dev(buf: &[u8]) -> Result<DevFeatures, DecodeError> {
    let a = Attrs::parse(buf)?;
    Ok(DevFeatures {
        xdp: a
            .u64(A_DEV_XDP_FEATURES)
            .ok_or_else(|| DecodeError::from("netdev reply without xdp-features"))?,
        zc_max_segs: a.u32(A_DEV_XDP_ZC_MAX_SEGS),
        rx_metadata: a.u64(A_DEV_XDP_RX_METADATA_FEATURES),
        xsk: a.u64(A_DEV_XSK_FEATURES),
    })
}

/// Parses the replies of a per-queue `NETDEV_CMD_QSTATS_GET` dump into
/// RX packets by queue id.
///
/// # Errors
/// Malformed attributes.
pub fn parse_rx_qstats(replies: &[Vec<u8>]) -> Result<BTreeMap<u32, u64>, DecodeError> {
    let mut out = BTreeMap::new();
    for r in replies {
        let a = Attrs::parse(r)?;
        if a.uint(A_QSTATS_QUEUE_TYPE) != Some(QUEUE_TYPE_RX) {
            continue;
        }
        if let (Some(q), Some(p)) = (a.u32(A_QSTATS_QUEUE_ID), a.uint(A_QSTATS_RX_PACKETS)) {
            out.insert(q, p);
        }
    }
    Ok(out)
}

/// A netdev netlink connection.
#[derive(Debug)]
pub struct Netdev {
    nl: Nl,
    family: u16,
}

impl Netdev {
    /// Opens a generic netlink socket and resolves the `netdev` family.
    ///
    /// # Errors
    /// `ENOENT` before Linux 6.3.
    pub fn open() -> io::Result<Netdev> {
        let mut nl = Nl::generic()?;
        let family = nl.family_id(FAMILY)?;
        Ok(Netdev { nl, family })
    }

    /// `NETDEV_CMD_DEV_GET` for one interface.
    ///
    /// # Errors
    /// Socket errors; `ENODEV` for an unknown ifindex.
    pub fn dev(&mut self, ifindex: u32) -> io::Result<DevFeatures> {
        let r = self.nl.genl(
            self.family,
            CMD_DEV_GET,
            VERSION,
            &[Attr::U32(A_DEV_IFINDEX, ifindex)],
            false,
        )?;
        let first = r
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "empty netdev reply"))?;
        parse_dev(first).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    /// `NETDEV_CMD_QSTATS_GET` with queue scope: RX packets per queue.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no queue statistics; `EINVAL`
    /// before Linux 6.10.
    pub fn rx_queue_packets(&mut self, ifindex: u32) -> io::Result<BTreeMap<u32, u64>> {
        let r = self.nl.genl(
            self.family,
            CMD_QSTATS_GET,
            VERSION,
            &[
                Attr::U32(A_QSTATS_IFINDEX, ifindex),
                Attr::U32(A_QSTATS_SCOPE, QSTATS_SCOPE_QUEUE),
            ],
            true,
        )?;
        parse_rx_qstats(&r).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::netlink::encode;
    use super::*;

    fn u64_attr(kind: u16, v: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&12u16.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&v.to_ne_bytes());
        b
    }

    #[test]
    fn veth_features_native_but_no_zero_copy() {
        // veth on 6.18: basic | redirect | ndo-xmit | rx-sg | ndo-xmit-sg.
        let mut b = encode(&[Attr::U32(1, 5), Attr::U32(4, 0)]);
        b.extend(u64_attr(3, 0x67));
        b.extend(u64_attr(5, 0));
        b.extend(u64_attr(6, 0));
        let f = parse_dev(&b).unwrap();
        assert!(f.native());
        assert!(!f.zero_copy());
        assert!(f.rx_sg());
        assert_eq!(
            f.xdp_names(),
            ["basic", "redirect", "ndo-xmit", "rx-sg", "ndo-xmit-sg"]
        );
        assert!(f.rx_metadata_names().is_empty());
    }

    #[test]
    fn mlx5_like_features() {
        let mut b = encode(&[Attr::U32(1, 4), Attr::U32(4, 1)]);
        b.extend(u64_attr(3, 0x2f));
        b.extend(u64_attr(5, 7));
        b.extend(u64_attr(6, 3));
        let f = parse_dev(&b).unwrap();
        assert!(f.native() && f.zero_copy());
        assert_eq!(f.zc_max_segs, Some(1));
        assert_eq!(f.rx_metadata_names(), ["timestamp", "hash", "vlan-tag"]);
        assert_eq!(f.xsk_names(), ["tx-timestamp", "tx-checksum"]);
    }

    #[test]
    fn a_reply_without_features_is_an_error() {
        assert!(parse_dev(&encode(&[Attr::U32(1, 4)])).is_err());
    }

    #[test]
    fn qstats_keeps_rx_queues_only() {
        let mut q0 = encode(&[Attr::U32(1, 4), Attr::U32(2, 0), Attr::U32(3, 0)]);
        q0.extend(u64_attr(8, 1_000));
        let q1 = encode(&[
            Attr::U32(1, 4),
            Attr::U32(2, 0),
            Attr::U32(3, 1),
            Attr::U32(8, 7),
        ]);
        let tx = encode(&[
            Attr::U32(1, 4),
            Attr::U32(2, 1),
            Attr::U32(3, 0),
            Attr::U32(10, 9),
        ]);
        let m = parse_rx_qstats(&[q0, q1, tx]).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&0], 1_000);
        assert_eq!(m[&1], 7);
    }
}
