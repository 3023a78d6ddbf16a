//! The `ethtool` generic-netlink family (the family behind
//! `ethtool -l/-g/-c/-k/-x/-G`), without running ethtool: request builders,
//! pure reply parsers, and the one write the doctor makes
//! (`ETHTOOL_MSG_RINGS_SET`).
//!
//! Constants from `include/uapi/linux/ethtool_netlink.h` (the family exists
//! since Linux 5.6; `RSS_GET` since 6.4). A driver that lacks an operation
//! answers `EOPNOTSUPP`, which the caller turns into a finding.

use std::collections::BTreeSet;

use netlink_packet_core::DecodeError;

use super::genl::{Genl, GenlRequest};
use super::{Attr, Attrs};
use crate::error::{HostError, Result};

/// Family name registered by the kernel.
pub const FAMILY: &str = "ethtool";
const VERSION: u8 = 1;

const MSG_FEATURES_GET: u8 = 11;
const MSG_RINGS_GET: u8 = 15;
const MSG_RINGS_SET: u8 = 16;
const MSG_CHANNELS_GET: u8 = 17;
const MSG_COALESCE_GET: u8 = 19;
const MSG_RSS_GET: u8 = 38;

/// Every `*_HEADER` attribute is type 1; inside it `DEV_INDEX` is 1.
const A_HEADER: u16 = 1;
const A_HEADER_DEV_INDEX: u16 = 1;

/// The request header attribute (`ETHTOOL_A_*_HEADER`) naming interface
/// `ifindex`.
pub fn header(ifindex: u32) -> Attr {
    Attr::Nest(A_HEADER, vec![Attr::U32(A_HEADER_DEV_INDEX, ifindex)])
}

/// `ethtool -l`: channel (queue) counts and their maxima.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    /// Maximum RX-only channels.
    pub rx_max: u32,
    /// Maximum TX-only channels.
    pub tx_max: u32,
    /// Maximum other channels.
    pub other_max: u32,
    /// Maximum combined (RX+TX) channels.
    pub combined_max: u32,
    /// Current RX-only channels.
    pub rx: u32,
    /// Current TX-only channels.
    pub tx: u32,
    /// Current other channels.
    pub other: u32,
    /// Current combined channels.
    pub combined: u32,
}

impl Channels {
    /// Receive queues in use: RX-only plus combined.
    pub fn rx_queues(&self) -> u32 {
        self.rx + self.combined
    }
    /// The most receive queues the driver allows.
    pub fn rx_queues_max(&self) -> u32 {
        self.rx_max.max(self.combined_max)
    }
}

/// Parses an `ETHTOOL_MSG_CHANNELS_GET_REPLY`.
///
/// # Errors
/// Malformed attributes.
pub fn parse_channels(buf: &[u8]) -> Result<Channels, DecodeError> {
    let a = Attrs::parse(buf)?;
    let g = |k| a.u32(k).unwrap_or(0);
    Ok(Channels {
        rx_max: g(2),
        tx_max: g(3),
        other_max: g(4),
        combined_max: g(5),
        rx: g(6),
        tx: g(7),
        other: g(8),
        combined: g(9),
    })
}

/// `ethtool -g`: descriptor ring sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rings {
    /// Largest RX ring the NIC allows.
    pub rx_max: Option<u32>,
    /// Largest TX ring.
    pub tx_max: Option<u32>,
    /// Current RX ring.
    pub rx: Option<u32>,
    /// Current TX ring.
    pub tx: Option<u32>,
}

/// Parses an `ETHTOOL_MSG_RINGS_GET_REPLY`.
///
/// # Errors
/// Malformed attributes.
pub fn parse_rings(buf: &[u8]) -> Result<Rings, DecodeError> {
    let a = Attrs::parse(buf)?;
    Ok(Rings {
        rx_max: a.u32(2),
        tx_max: a.u32(5),
        rx: a.u32(6),
        tx: a.u32(9),
    })
}

/// `ethtool -c`: interrupt coalescing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coalesce {
    /// Microseconds to wait after a packet before interrupting.
    pub rx_usecs: Option<u32>,
    /// Packets to collect before interrupting.
    pub rx_frames: Option<u32>,
    /// TX completion microseconds.
    pub tx_usecs: Option<u32>,
    /// TX completion frames.
    pub tx_frames: Option<u32>,
    /// Adaptive RX moderation.
    pub adaptive_rx: Option<bool>,
    /// Adaptive TX moderation.
    pub adaptive_tx: Option<bool>,
}

/// Parses an `ETHTOOL_MSG_COALESCE_GET_REPLY`.
///
/// # Errors
/// Malformed attributes.
pub fn parse_coalesce(buf: &[u8]) -> Result<Coalesce, DecodeError> {
    let a = Attrs::parse(buf)?;
    Ok(Coalesce {
        rx_usecs: a.u32(2),
        rx_frames: a.u32(3),
        tx_usecs: a.u32(6),
        tx_frames: a.u32(7),
        adaptive_rx: a.u8(11).map(|v| v != 0),
        adaptive_tx: a.u8(12).map(|v| v != 0),
    })
}

/// `ethtool -k`: offload features by their kernel names (`rx-gro`,
/// `tx-tcp-segmentation`, `rx-lro`, `rx-checksum`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// Features the hardware/driver can toggle.
    pub hw: BTreeSet<String>,
    /// Features on now.
    pub active: BTreeSet<String>,
    /// Features that cannot be changed.
    pub nochange: BTreeSet<String>,
}

impl Features {
    /// Whether `name` is on.
    pub fn on(&self, name: &str) -> bool {
        self.active.contains(name)
    }
    /// Whether `name` can be switched with `ethtool -K`.
    pub fn changeable(&self, name: &str) -> bool {
        self.hw.contains(name) && !self.nochange.contains(name)
    }
}

/// Reads the names of the set bits of a verbose ethtool bitset
/// (`ETHTOOL_A_BITSET_*`). In a "no mask" bitset every listed bit is set; in
/// a value/mask bitset a listed bit is set when it carries the VALUE flag.
///
/// # Errors
/// Malformed attributes.
pub fn parse_bitset(buf: &[u8]) -> Result<BTreeSet<String>, DecodeError> {
    const NOMASK: u16 = 1;
    const BITS: u16 = 3;
    const BITS_BIT: u16 = 1;
    const BIT_INDEX: u16 = 1;
    const BIT_NAME: u16 = 2;
    const BIT_VALUE: u16 = 3;
    let a = Attrs::parse(buf)?;
    let nomask = a.has(NOMASK);
    let mut set = BTreeSet::new();
    if let Some(bits) = a.nested(BITS) {
        for bit in bits.all(BITS_BIT) {
            let b = Attrs::parse(bit)?;
            if nomask || b.has(BIT_VALUE) {
                let name = b
                    .str(BIT_NAME)
                    .or_else(|| b.u32(BIT_INDEX).map(|i| format!("bit{i}")));
                if let Some(n) = name {
                    set.insert(n);
                }
            }
        }
    }
    Ok(set)
}

/// Parses an `ETHTOOL_MSG_FEATURES_GET_REPLY` (verbose bitsets).
///
/// # Errors
/// Malformed attributes.
pub fn parse_features(buf: &[u8]) -> Result<Features, DecodeError> {
    let a = Attrs::parse(buf)?;
    let set = |k| a.get(k).map(parse_bitset).transpose();
    Ok(Features {
        hw: set(2)?.unwrap_or_default(),
        active: set(4)?.unwrap_or_default(),
        nochange: set(5)?.unwrap_or_default(),
    })
}

/// `ethtool -x`: the RSS indirection table (hash bucket → RX queue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rss {
    /// Queue index of each bucket.
    pub indir: Vec<u32>,
}

impl Rss {
    /// The distinct queues the table spreads over.
    pub fn queues(&self) -> BTreeSet<u32> {
        self.indir.iter().copied().collect()
    }
}

/// Parses an `ETHTOOL_MSG_RSS_GET_REPLY`.
///
/// # Errors
/// Malformed attributes.
pub fn parse_rss(buf: &[u8]) -> Result<Rss, DecodeError> {
    let a = Attrs::parse(buf)?;
    let indir = a
        .get(4)
        .map(|v| {
            v.chunks_exact(4)
                .filter_map(|c| c.try_into().ok().map(u32::from_ne_bytes))
                .collect()
        })
        .unwrap_or_default();
    Ok(Rss { indir })
}

/// An ethtool netlink connection (family id resolved once), in the network
/// namespace of the thread that opened it.
#[derive(Debug)]
pub struct Ethtool {
    genl: Genl,
    family: u16,
}

impl Ethtool {
    /// Opens a generic netlink socket and resolves the `ethtool` family.
    ///
    /// # Errors
    /// `ENOENT` on kernels before 5.6 (no ethtool netlink).
    pub fn open() -> Result<Ethtool> {
        let mut genl = Genl::open()?;
        let family = genl.family_id(FAMILY)?;
        Ok(Ethtool { genl, family })
    }

    fn request(&mut self, op: &str, cmd: u8, attrs: &[Attr]) -> Result<Vec<Vec<u8>>> {
        let req = GenlRequest {
            family: self.family,
            cmd,
            version: VERSION,
            attrs,
            dump: false,
        };
        self.genl.request(op, req)
    }

    fn get<T>(
        &mut self,
        what: &str,
        cmd: u8,
        ifindex: u32,
        parse: fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T> {
        let op = format!("reading {what} of interface #{ifindex} (ethtool netlink)");
        let r = self.request(&op, cmd, &[header(ifindex)])?;
        let last = r
            .last()
            .ok_or_else(|| HostError::protocol(&op, "empty ethtool reply"))?;
        parse(last).map_err(|e| HostError::protocol(&op, e.to_string()))
    }

    /// `ETHTOOL_MSG_CHANNELS_GET`.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no channels.
    pub fn channels(&mut self, ifindex: u32) -> Result<Channels> {
        self.get("the channels", MSG_CHANNELS_GET, ifindex, parse_channels)
    }

    /// `ETHTOOL_MSG_RINGS_GET`.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver does not report rings.
    pub fn rings(&mut self, ifindex: u32) -> Result<Rings> {
        self.get("the ring sizes", MSG_RINGS_GET, ifindex, parse_rings)
    }

    /// `ETHTOOL_MSG_COALESCE_GET`.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no coalescing settings.
    pub fn coalesce(&mut self, ifindex: u32) -> Result<Coalesce> {
        self.get("the coalescing", MSG_COALESCE_GET, ifindex, parse_coalesce)
    }

    /// `ETHTOOL_MSG_FEATURES_GET`.
    ///
    /// # Errors
    /// Socket errors.
    pub fn features(&mut self, ifindex: u32) -> Result<Features> {
        self.get("the features", MSG_FEATURES_GET, ifindex, parse_features)
    }

    /// `ETHTOOL_MSG_RSS_GET` (Linux 6.4+).
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no RSS table; `EINVAL` on older kernels.
    pub fn rss(&mut self, ifindex: u32) -> Result<Rss> {
        self.get("the RSS table", MSG_RSS_GET, ifindex, parse_rss)
    }

    /// `ETHTOOL_MSG_RINGS_SET`: resizes the RX and/or TX ring (`ethtool -G`).
    /// Needs `CAP_NET_ADMIN`.
    ///
    /// # Errors
    /// `EPERM` without privilege, `EINVAL` above the driver's maximum,
    /// `EOPNOTSUPP` when the driver cannot resize.
    pub fn set_rings(&mut self, ifindex: u32, rx: Option<u32>, tx: Option<u32>) -> Result<()> {
        let op = format!("resizing the rings of interface #{ifindex} (ethtool netlink)");
        self.request(&op, MSG_RINGS_SET, &rings_set_attrs(ifindex, rx, tx))
            .map(|_| ())
    }
}

/// The attributes of an `ETHTOOL_MSG_RINGS_SET` request.
pub fn rings_set_attrs(ifindex: u32, rx: Option<u32>, tx: Option<u32>) -> Vec<Attr> {
    let mut attrs = vec![header(ifindex)];
    if let Some(rx) = rx {
        attrs.push(Attr::U32(6, rx));
    }
    if let Some(tx) = tx {
        attrs.push(Attr::U32(9, tx));
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::*;

    fn bit(name: &str, index: u32, value: bool) -> Attr {
        let mut v = vec![Attr::U32(1, index), Attr::Str(2, name.into())];
        if value {
            v.push(Attr::Flag(3));
        }
        Attr::Nest(1, v)
    }

    #[test]
    fn channels_of_a_combined_queue_nic() {
        // mlx5-like: combined channels only.
        let b = encode(&[
            Attr::Nest(1, vec![Attr::U32(1, 4), Attr::Str(2, "eth0".into())]),
            Attr::U32(5, 32),
            Attr::U32(9, 8),
        ]);
        let c = parse_channels(&b).unwrap();
        assert_eq!(c.combined, 8);
        assert_eq!(c.rx_queues(), 8);
        assert_eq!(c.rx_queues_max(), 32);
    }

    #[test]
    fn channels_of_a_veth() {
        // veth reports rx/tx counts and maxima, no combined.
        let b = encode(&[
            Attr::U32(2, 2),
            Attr::U32(3, 2),
            Attr::U32(6, 1),
            Attr::U32(7, 1),
        ]);
        let c = parse_channels(&b).unwrap();
        assert_eq!((c.rx_queues(), c.rx_queues_max()), (1, 2));
    }

    #[test]
    fn rings_and_coalesce() {
        let r = parse_rings(&encode(&[
            Attr::U32(2, 8192),
            Attr::U32(5, 8192),
            Attr::U32(6, 512),
            Attr::U32(9, 1024),
        ]))
        .unwrap();
        assert_eq!(r.rx, Some(512));
        assert_eq!(r.rx_max, Some(8192));
        assert_eq!(r.tx, Some(1024));
        let c = parse_coalesce(&encode(&[
            Attr::U32(2, 16),
            Attr::U32(3, 44),
            Attr::U8(11, 1),
            Attr::U8(12, 0),
        ]))
        .unwrap();
        assert_eq!(c.rx_usecs, Some(16));
        assert_eq!(c.rx_frames, Some(44));
        assert_eq!(c.adaptive_rx, Some(true));
        assert_eq!(c.adaptive_tx, Some(false));
        assert_eq!(c.tx_usecs, None);
    }

    #[test]
    fn features_from_nomask_and_mask_bitsets() {
        // hw: NOMASK, lists rx-gro and rx-lro (both settable).
        let hw = Attr::Nest(
            2,
            vec![
                Attr::Flag(1),
                Attr::U32(2, 64),
                Attr::Nest(3, vec![bit("rx-gro", 14, false), bit("rx-lro", 15, false)]),
            ],
        );
        // active: value/mask form: rx-gro set, rx-lro listed but clear.
        let active = Attr::Nest(
            4,
            vec![
                Attr::U32(2, 64),
                Attr::Nest(3, vec![bit("rx-gro", 14, true), bit("rx-lro", 15, false)]),
            ],
        );
        let f = parse_features(&encode(&[hw, active])).unwrap();
        assert!(f.on("rx-gro"));
        assert!(!f.on("rx-lro"));
        assert!(f.changeable("rx-lro"));
        assert!(!f.changeable("rx-checksum"));
    }

    #[test]
    fn rings_set_request() {
        let a = encode(&rings_set_attrs(4, Some(512), None));
        let a = Attrs::parse(&a).unwrap();
        assert_eq!(a.nested(A_HEADER).unwrap().u32(A_HEADER_DEV_INDEX), Some(4));
        assert_eq!((a.u32(6), a.u32(9)), (Some(512), None));
    }

    #[test]
    fn rss_indirection_table() {
        let mut table = Vec::new();
        for i in 0..8u32 {
            table.extend_from_slice(&(i % 2).to_ne_bytes());
        }
        let mut b = encode(&[Attr::U32(3, 1)]);
        b.extend_from_slice(&((4 + table.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&4u16.to_ne_bytes());
        b.extend_from_slice(&table);
        let r = parse_rss(&b).unwrap();
        assert_eq!(r.indir.len(), 8);
        assert_eq!(r.queues().into_iter().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn loopback_through_the_kernel() {
        // lo has no channels or rings; the kernel says so, by errno.
        let mut e = Ethtool::open().unwrap();
        let err = e.channels(1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP), "{err}");
        assert!(e.features(1).unwrap().hw.len() < 1000);
    }
}
