//! The `netdev` generic-netlink family (`Documentation/netlink/specs/netdev.yaml`):
//! what XDP and AF_XDP a device supports (`dev-get`, Linux 6.3+), its NAPI
//! instances (`napi-get`, 6.9+) and their threaded mode (`napi-set`
//! `threaded`, 6.17+), and per-queue packet counters (`qstats-get`, 6.10+,
//! drivers that implement them).
//!
//! The family is `netnsok`: a [`Netdev`] made on a thread inside a network
//! namespace sees that namespace's devices and nothing else.
//!
//! Constants from `include/uapi/linux/netdev.h` at v6.18. The reply parsers
//! are pure and tested here.

use std::collections::BTreeMap;

use netlink_packet_core::DecodeError;

use super::genl::{Genl, GenlRequest};
use super::{Attr, Attrs};
use crate::error::{HostError, Result};

/// Family name registered by the kernel.
pub const FAMILY: &str = "netdev";
const VERSION: u8 = 1;

const CMD_DEV_GET: u8 = 1;
const CMD_NAPI_GET: u8 = 11;
const CMD_QSTATS_GET: u8 = 12;
const CMD_NAPI_SET: u8 = 14;

const A_DEV_IFINDEX: u16 = 1;
const A_DEV_XDP_FEATURES: u16 = 3;
const A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const A_DEV_XSK_FEATURES: u16 = 6;

const A_NAPI_IFINDEX: u16 = 1;
const A_NAPI_ID: u16 = 2;
/// The NAPI kthread, present only when threaded.
const A_NAPI_PID: u16 = 4;
/// `enum netdev_napi_threaded`: 0 disabled, 1 enabled.
const A_NAPI_THREADED: u16 = 8;

const A_QSTATS_IFINDEX: u16 = 1;
const A_QSTATS_QUEUE_TYPE: u16 = 2;
const A_QSTATS_QUEUE_ID: u16 = 3;
const A_QSTATS_SCOPE: u16 = 4;
const A_QSTATS_RX_PACKETS: u16 = 8;
const QUEUE_TYPE_RX: u64 = 0;
const QSTATS_SCOPE_QUEUE: u32 = 1;

/// `NETDEV_XDP_ACT_*` bits (`xdp-features`).
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

/// `NETDEV_XDP_RX_METADATA_*` bits (`xdp-rx-metadata-features`).
pub mod rx_meta {
    /// `NETDEV_XDP_RX_METADATA_TIMESTAMP`.
    pub const TIMESTAMP: u64 = 1;
    /// `NETDEV_XDP_RX_METADATA_HASH`.
    pub const HASH: u64 = 2;
    /// `NETDEV_XDP_RX_METADATA_VLAN_TAG`.
    pub const VLAN_TAG: u64 = 4;
}

/// `NETDEV_XSK_FLAGS_*` bits (`xsk-features`, Linux 6.8+).
pub mod xsk_flags {
    /// `NETDEV_XSK_FLAGS_TX_TIMESTAMP`.
    pub const TX_TIMESTAMP: u64 = 1;
    /// `NETDEV_XSK_FLAGS_TX_CHECKSUM`.
    pub const TX_CHECKSUM: u64 = 2;
    /// `NETDEV_XSK_FLAGS_TX_LAUNCH_TIME_FIFO`.
    pub const TX_LAUNCH_TIME: u64 = 4;
}

/// What the device can do with XDP and AF_XDP (`dev-get`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevFeatures {
    /// [`xdp_act`] bits.
    pub xdp: u64,
    /// Most fragments per packet in zero-copy multi-buffer mode.
    pub zc_max_segs: Option<u32>,
    /// [`rx_meta`] bits.
    pub rx_metadata: Option<u64>,
    /// [`xsk_flags`] bits (absent before Linux 6.8).
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
            &[
                (rx_meta::TIMESTAMP, "timestamp"),
                (rx_meta::HASH, "hash"),
                (rx_meta::VLAN_TAG, "vlan-tag"),
            ],
        )
    }
    /// Names of the AF_XDP TX metadata kinds.
    pub fn xsk_names(&self) -> Vec<&'static str> {
        names(
            self.xsk.unwrap_or(0),
            &[
                (xsk_flags::TX_TIMESTAMP, "tx-timestamp"),
                (xsk_flags::TX_CHECKSUM, "tx-checksum"),
                (xsk_flags::TX_LAUNCH_TIME, "tx-launch-time"),
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

/// Parses a `NETDEV_CMD_DEV_GET` reply's attributes.
///
/// # Errors
/// Malformed attributes, or a reply without `xdp-features`.
pub fn parse_dev(buf: &[u8]) -> Result<DevFeatures, DecodeError> {
    let a = Attrs::parse(buf)?;
    Ok(DevFeatures {
        xdp: a
            .uint(A_DEV_XDP_FEATURES)
            .ok_or_else(|| DecodeError::from("netdev reply without xdp-features"))?,
        zc_max_segs: a.u32(A_DEV_XDP_ZC_MAX_SEGS),
        rx_metadata: a.uint(A_DEV_XDP_RX_METADATA_FEATURES),
        xsk: a.uint(A_DEV_XSK_FEATURES),
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

/// One NAPI instance as `napi-get` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NapiInfo {
    /// `NETDEV_A_NAPI_ID`: global across namespaces.
    pub id: u32,
    /// `NETDEV_A_NAPI_IFINDEX`.
    pub ifindex: u32,
    /// `NETDEV_A_NAPI_PID`: the kthread's pid (in the initial PID
    /// namespace), present only while the instance is threaded.
    pub pid: Option<u32>,
    /// `NETDEV_A_NAPI_THREADED`; `None` on kernels before 6.17, which have
    /// no per-NAPI threaded setting.
    pub threaded: Option<bool>,
}

/// Parses the replies of a `napi-get` dump, keeping the instances of
/// `ifindex` (older kernels ignore the dump's ifindex filter).
///
/// # Errors
/// Malformed attributes.
pub fn parse_napis(replies: &[Vec<u8>], ifindex: u32) -> Result<Vec<NapiInfo>, DecodeError> {
    let mut out = Vec::new();
    for r in replies {
        let a = Attrs::parse(r)?;
        let napi = NapiInfo {
            id: a.uint(A_NAPI_ID).unwrap_or(0) as u32,
            ifindex: a.uint(A_NAPI_IFINDEX).unwrap_or(0) as u32,
            pid: a.uint(A_NAPI_PID).map(|p| p as u32),
            threaded: a.uint(A_NAPI_THREADED).map(|t| t != 0),
        };
        if napi.ifindex == ifindex && napi.id != 0 {
            out.push(napi);
        }
    }
    Ok(out)
}

/// A `netdev` generic-netlink connection (family id resolved once), in the
/// network namespace of the thread that opened it.
#[derive(Debug)]
pub struct Netdev {
    genl: Genl,
    family: u16,
}

fn invalid(op: &str) -> impl FnOnce(DecodeError) -> HostError + '_ {
    move |e| HostError::protocol(op, e.to_string())
}

impl Netdev {
    /// Opens a generic-netlink socket and resolves the `netdev` family.
    ///
    /// # Errors
    /// [`HostError::Unsupported`] if the kernel has no `netdev` family
    /// (before Linux 6.3); [`HostError::Sys`]/[`HostError::Netlink`] otherwise.
    pub fn open() -> Result<Netdev> {
        let mut genl = Genl::open()?;
        let family = match genl.family_id(FAMILY) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(HostError::Unsupported(
                    "this kernel has no `netdev` generic-netlink family (Linux 6.3 or later has \
                     it; NAPI placement needs 6.17 or later)"
                        .into(),
                ))
            }
            Err(e) => return Err(e),
        };
        Ok(Netdev { genl, family })
    }

    fn request(&mut self, op: &str, cmd: u8, attrs: &[Attr], dump: bool) -> Result<Vec<Vec<u8>>> {
        self.genl.request(
            op,
            GenlRequest {
                family: self.family,
                cmd,
                version: VERSION,
                attrs,
                dump,
            },
        )
    }

    /// `dev-get` for one interface: its XDP and AF_XDP features.
    ///
    /// # Errors
    /// [`HostError::Netlink`] with `ENODEV` for an unknown ifindex.
    pub fn dev(&mut self, ifindex: u32) -> Result<DevFeatures> {
        let op = format!("reading the XDP features of interface #{ifindex} (netdev dev-get)");
        let r = self.request(
            &op,
            CMD_DEV_GET,
            &[Attr::U32(A_DEV_IFINDEX, ifindex)],
            false,
        )?;
        let first = r
            .first()
            .ok_or_else(|| HostError::protocol(&op, "empty netdev reply"))?;
        parse_dev(first).map_err(invalid(&op))
    }

    /// `napi-get` dump of the NAPI instances of interface `ifindex`; `what`
    /// names it in errors.
    ///
    /// # Errors
    /// [`HostError::Unsupported`] before Linux 6.9 (no `napi-get`).
    pub fn napis(&mut self, ifindex: u32, what: &str) -> Result<Vec<NapiInfo>> {
        let op = format!("listing the NAPI instances of {what} (netdev napi-get)");
        let r = self
            .request(
                &op,
                CMD_NAPI_GET,
                &[Attr::U32(A_NAPI_IFINDEX, ifindex)],
                true,
            )
            .map_err(|e| e.unsupported_if_unknown("netdev napi-get (Linux 6.9 or later)"))?;
        parse_napis(&r, ifindex).map_err(invalid(&op))
    }

    /// `napi-set` of NAPI instance `id` with `threaded` = 1 or 0. Turning
    /// it on starts the `napi/<if>-<id>` kthread; turning it off stops it.
    ///
    /// # Errors
    /// [`HostError::Unsupported`] before Linux 6.17.
    pub fn set_napi_threaded(&mut self, id: u32, on: bool, what: &str) -> Result<()> {
        let op = format!(
            "switching threaded NAPI {} for NAPI {id} of {what} (netdev napi-set threaded)",
            if on { "on" } else { "off" }
        );
        let attrs = [
            Attr::U32(A_NAPI_ID, id),
            Attr::U32(A_NAPI_THREADED, u32::from(on)),
        ];
        self.request(&op, CMD_NAPI_SET, &attrs, false)
            .map(|_| ())
            .map_err(|e| {
                e.unsupported_if_unknown("netdev napi-set with `threaded` (Linux 6.17 or later)")
            })
    }

    /// `qstats-get` with queue scope: RX packets per queue.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no queue statistics; `EINVAL`
    /// before Linux 6.10.
    pub fn rx_queue_packets(&mut self, ifindex: u32) -> Result<BTreeMap<u32, u64>> {
        let op = format!("reading the queue counters of interface #{ifindex} (netdev qstats-get)");
        let attrs = [
            Attr::U32(A_QSTATS_IFINDEX, ifindex),
            Attr::U32(A_QSTATS_SCOPE, QSTATS_SCOPE_QUEUE),
        ];
        let r = self.request(&op, CMD_QSTATS_GET, &attrs, true)?;
        parse_rx_qstats(&r).map_err(invalid(&op))
    }
}

/// `dev-get` for one interface of the calling thread's namespace, on a
/// socket opened for it ([`Netdev::open`], [`Netdev::dev`]).
///
/// # Errors
/// As those two.
pub fn dev_features(ifindex: u32) -> Result<DevFeatures> {
    Netdev::open()?.dev(ifindex)
}

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::*;

    #[test]
    fn veth_features_native_but_no_zero_copy() {
        // veth on 6.18: basic | redirect | ndo-xmit | rx-sg | ndo-xmit-sg.
        let b = encode(&[
            Attr::U32(1, 5),
            Attr::U32(4, 0),
            Attr::U64(3, 0x67),
            Attr::U64(5, 0),
            Attr::U64(6, 0),
        ]);
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
        let b = encode(&[
            Attr::U32(1, 4),
            Attr::U32(4, 1),
            Attr::U64(3, 0x2f),
            Attr::U64(5, 7),
            Attr::U64(6, 3),
        ]);
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
        let q0 = encode(&[
            Attr::U32(1, 4),
            Attr::U32(2, 0),
            Attr::U32(3, 0),
            Attr::U64(8, 1_000),
        ]);
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

    #[test]
    fn napis_of_one_interface() {
        let threaded = encode(&[
            Attr::U32(A_NAPI_IFINDEX, 5),
            Attr::U32(A_NAPI_ID, 441),
            Attr::U32(A_NAPI_PID, 1234),
            Attr::U32(A_NAPI_THREADED, 1),
        ]);
        let old_kernel = encode(&[Attr::U32(A_NAPI_IFINDEX, 5), Attr::U32(A_NAPI_ID, 442)]);
        let other = encode(&[Attr::U32(A_NAPI_IFINDEX, 6), Attr::U32(A_NAPI_ID, 443)]);
        let n = parse_napis(&[threaded, old_kernel, other], 5).unwrap();
        assert_eq!(
            n,
            [
                NapiInfo {
                    id: 441,
                    ifindex: 5,
                    pid: Some(1234),
                    threaded: Some(true)
                },
                NapiInfo {
                    id: 442,
                    ifindex: 5,
                    pid: None,
                    threaded: None
                }
            ]
        );
    }

    #[test]
    fn loopback_through_the_kernel() {
        // `netdev` exists since 6.3; lo (index 1 in every namespace) has no
        // NAPI instance and no native XDP.
        let mut n = Netdev::open().unwrap();
        let lo = n.dev(1).unwrap();
        assert!(!lo.zero_copy());
        assert!(n.napis(1, "lo").unwrap().is_empty());
        let e = n.dev(0x7fff_fff0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        assert!(e.to_string().contains("netdev dev-get"), "{e}");
    }
}
