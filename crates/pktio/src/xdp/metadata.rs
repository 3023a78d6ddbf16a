//! Per-packet metadata: what the driver knows about a received packet (RX
//! hash and timestamp, through the XDP metadata kfuncs, kernel 6.3), and
//! what the sender asks of the device for a packet it sends (checksum
//! offload and a completion timestamp, through AF_XDP TX metadata, kernel
//! 6.8).
//!
//! # RX
//!
//! A socket built with
//! [`XskSocketBuilder::rx_metadata`](super::XskSocketBuilder::rx_metadata)
//! steers with a device-bound program ([`crate::bpf::progs::xsk_redirect_with`])
//! that calls the kfuncs and writes their answers into the
//! [`RX_META_LEN`] bytes in front of the
//! packet; the kernel copies them into the UMEM frame with the packet.
//! [`Frame::take_rx_metadata`] (or [`Packet::take_rx_metadata`]) reads them
//! back. A driver without a kfunc answers `-EOPNOTSUPP`, reported as
//! [`MetaValue::Unsupported`]; a packet without the value (veth: frames
//! that arrived by `XDP_REDIRECT` rather than from the peer's stack),
//! `-ENODATA`, as [`MetaValue::NoData`]. What the driver declares up front
//! (`netdev` netlink, `xdp-rx-metadata-features`) is in [`RxMetaSupport`].
//!
//! # TX
//!
//! A [`Umem`](super::Umem) registered with [`UmemConfig::tx_metadata`](super::UmemConfig::tx_metadata)
//! keeps a `struct xsk_tx_metadata` in front of each packet to send.
//! [`TxBatch::push_with_metadata`] writes the [`TxRequest`] there and flags
//! the descriptor `XDP_TX_METADATA`; after completion,
//! [`Frame::tx_timestamp`] reads the timestamp the kernel wrote back. In
//! copy mode the kernel does both itself (the checksum through the skb's
//! `CHECKSUM_PARTIAL`, or in software with
//! [`TxMetadataMode::SoftwareChecksum`]; the timestamp is a software one,
//! `CLOCK_TAI`, taken when the skb is freed); in zero-copy mode the driver
//! must declare them (`xsk-features`). [`TxMetadataSupport`] says which.

use super::mode::BoundMode;
use super::multibuf::{Packet, XDP_TX_METADATA};
use super::rings::TxBatch;
pub use super::umem::TxMetadataMode;
use super::umem::{Frame, XSK_TX_METADATA_SIZE};
use super::XskError;
use crate::bpf::progs::{RX_META_LEN, RX_META_MAGIC};
use crate::host::netdev;

// ---------------------------------------------------------------------------
// Capability answers
// ---------------------------------------------------------------------------

/// Whether a feature is available, and how or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Available; how it is provided.
    Yes(String),
    /// Not available; why, and what would change that.
    No(String),
}

impl Support {
    /// Whether it is available.
    pub fn is_yes(&self) -> bool {
        matches!(self, Support::Yes(_))
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Yes(how) => write!(f, "yes ({how})"),
            Support::No(why) => write!(f, "no ({why})"),
        }
    }
}

/// What the driver declares about the XDP RX metadata kfuncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxMetaSupport {
    /// `bpf_xdp_metadata_rx_timestamp`.
    pub timestamp: Support,
    /// `bpf_xdp_metadata_rx_hash`.
    pub hash: Support,
}

/// What a socket can do with TX metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxMetadataSupport {
    /// `XDP_TXMD_FLAGS_CHECKSUM`.
    pub checksum: Support,
    /// `XDP_TXMD_FLAGS_TIMESTAMP`.
    pub timestamp: Support,
}

/// What the `netdev` generic-netlink family says about a device (kernel 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceXdpFeatures {
    /// Native XDP handles multi-buffer frames (`NETDEV_XDP_ACT_RX_SG`).
    pub rx_sg: bool,
    /// AF_XDP zero-copy (`NETDEV_XDP_ACT_XSK_ZEROCOPY`).
    pub xsk_zerocopy: bool,
    /// Descriptors per packet in zero-copy mode (`xdp-zc-max-segs`).
    pub zc_max_segs: u32,
    /// `xdp-rx-metadata-features`: the RX timestamp kfunc.
    pub rx_timestamp: bool,
    /// `xdp-rx-metadata-features`: the RX hash kfunc.
    pub rx_hash: bool,
    /// `xsk-features`: TX timestamps in zero-copy mode (6.8).
    pub tx_timestamp: bool,
    /// `xsk-features`: TX checksum offload in zero-copy mode (6.8).
    pub tx_checksum: bool,
}

impl DeviceXdpFeatures {
    /// Asks the kernel about interface `ifindex` in the calling thread's
    /// network namespace: generic netlink, family `netdev`,
    /// `NETDEV_CMD_DEV_GET` (kernel 6.3).
    ///
    /// # Errors
    /// The failed netlink call (`ENOENT` when the kernel has no `netdev`
    /// family, `ENODEV` for an unknown index).
    pub fn query(ifindex: u32) -> Result<DeviceXdpFeatures, crate::SysError> {
        let f = netdev::dev_features(ifindex)?;
        Ok(DeviceXdpFeatures {
            rx_sg: f.xdp_features & netdev::XDP_ACT_RX_SG != 0,
            xsk_zerocopy: f.xdp_features & netdev::XDP_ACT_XSK_ZEROCOPY != 0,
            zc_max_segs: f.zc_max_segs,
            rx_timestamp: f.rx_metadata & netdev::RX_META_TIMESTAMP != 0,
            rx_hash: f.rx_metadata & netdev::RX_META_HASH != 0,
            tx_timestamp: f.xsk_features & netdev::XSK_TX_TIMESTAMP != 0,
            tx_checksum: f.xsk_features & netdev::XSK_TX_CHECKSUM != 0,
        })
    }

    /// The RX metadata answer for a program attached in `attach` mode.
    pub(crate) fn rx_meta_support(
        features: Result<&DeviceXdpFeatures, &str>,
        driver: &str,
        skb_mode: bool,
    ) -> RxMetaSupport {
        if skb_mode {
            let no = || {
                Support::No(
                    "generic (skb) XDP has no metadata kfuncs: attach in driver mode".into(),
                )
            };
            return RxMetaSupport {
                timestamp: no(),
                hash: no(),
            };
        }
        match features {
            Ok(f) => {
                let s = |on: bool, what: &str| {
                    if on {
                        Support::Yes(format!("driver {driver} implements {what}"))
                    } else {
                        Support::No(format!("driver {driver} does not implement {what}"))
                    }
                };
                RxMetaSupport {
                    timestamp: s(f.rx_timestamp, "xmo_rx_timestamp"),
                    hash: s(f.rx_hash, "xmo_rx_hash"),
                }
            }
            Err(e) => RxMetaSupport {
                timestamp: Support::No(format!("unknown: {e}; see each packet's answer")),
                hash: Support::No(format!("unknown: {e}; see each packet's answer")),
            },
        }
    }

    /// The TX metadata answer for a socket in `mode` on a UMEM with (or
    /// without) TX metadata.
    pub(crate) fn tx_meta_support(
        features: Result<&DeviceXdpFeatures, &str>,
        driver: &str,
        mode: BoundMode,
        umem_mode: TxMetadataMode,
    ) -> TxMetadataSupport {
        if umem_mode == TxMetadataMode::Off {
            let no = || {
                Support::No(
                    "the UMEM has no TX metadata: set UmemConfig::tx_metadata (kernel 6.8)".into(),
                )
            };
            return TxMetadataSupport {
                checksum: no(),
                timestamp: no(),
            };
        }
        match mode {
            BoundMode::Copy => TxMetadataSupport {
                checksum: Support::Yes(if umem_mode == TxMetadataMode::SoftwareChecksum {
                    "copy mode: computed in software when sent (XDP_UMEM_TX_SW_CSUM)".into()
                } else {
                    format!("copy mode: a CHECKSUM_PARTIAL skb, completed by {driver} or the stack")
                }),
                timestamp: Support::Yes(
                    "copy mode: a software timestamp (CLOCK_TAI) when the kernel frees the skb"
                        .into(),
                ),
            },
            BoundMode::ZeroCopy => match features {
                Ok(f) => {
                    let s = |on: bool, what: &str| {
                        if on {
                            Support::Yes(format!("driver {driver} declares {what}"))
                        } else {
                            Support::No(format!(
                                "driver {driver} does not declare {what} for zero-copy: bind in copy mode"
                            ))
                        }
                    };
                    TxMetadataSupport {
                        checksum: s(f.tx_checksum, "tx-checksum"),
                        timestamp: s(f.tx_timestamp, "tx-timestamp"),
                    }
                }
                Err(e) => TxMetadataSupport {
                    checksum: Support::No(format!("unknown ({e})")),
                    timestamp: Support::No(format!("unknown ({e})")),
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------
// RX metadata
// ---------------------------------------------------------------------------

/// One metadata value as the driver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaValue<T> {
    /// The driver's value.
    Value(T),
    /// The driver does not implement this kfunc (`-EOPNOTSUPP`).
    Unsupported,
    /// The driver has no value for this packet (`-ENODATA`; a timestamp of
    /// 0 — no hardware timestamp — counts as this too).
    NoData,
    /// Another error from the kfunc (the positive errno).
    Error(i32),
}

impl<T: Copy> MetaValue<T> {
    /// The value, if there is one.
    pub fn value(&self) -> Option<T> {
        match self {
            MetaValue::Value(v) => Some(*v),
            _ => None,
        }
    }

    fn from_status(status: i32, value: T) -> MetaValue<T> {
        match status {
            0 => MetaValue::Value(value),
            s if s == -libc::EOPNOTSUPP => MetaValue::Unsupported,
            s if s == -libc::ENODATA => MetaValue::NoData,
            s => MetaValue::Error(s.unsigned_abs() as i32),
        }
    }
}

/// `enum xdp_rss_hash_type` bits: what the RX hash was computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RssHashType(pub u32);

impl RssHashType {
    /// `XDP_RSS_L3_IPV4`.
    pub const L3_IPV4: u32 = 1 << 0;
    /// `XDP_RSS_L3_IPV6`.
    pub const L3_IPV6: u32 = 1 << 1;
    /// `XDP_RSS_L4` (any L4 protocol).
    pub const L4: u32 = 1 << 3;

    /// Whether the hash covers layer-4 ports.
    pub fn is_l4(self) -> bool {
        self.0 & Self::L4 != 0
    }
}

/// What the steering program learnt from the driver about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMetadata {
    /// RX timestamp in nanoseconds (the driver's clock; a hardware clock
    /// for NICs).
    pub timestamp: MetaValue<u64>,
    /// RX hash and what it covers.
    pub hash: MetaValue<(u32, RssHashType)>,
    /// Packet length the program saw, all buffers.
    pub len: u32,
}

impl RxMetadata {
    /// Decodes the [`RX_META_LEN`] bytes (native byte order); `None` without
    /// the program's magic.
    pub fn parse(b: &[u8]) -> Option<RxMetadata> {
        if b.len() < RX_META_LEN as usize {
            return None;
        }
        let u32_at = |at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if u32_at(28) != RX_META_MAGIC {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[0..8]);
        let ts = u64::from_ne_bytes(ts);
        let ts_status = u32_at(16) as i32;
        let timestamp = match MetaValue::from_status(ts_status, ts) {
            MetaValue::Value(0) => MetaValue::NoData,
            v => v,
        };
        Some(RxMetadata {
            timestamp,
            hash: MetaValue::from_status(u32_at(20) as i32, (u32_at(8), RssHashType(u32_at(12)))),
            len: u32_at(24),
        })
    }
}

impl Frame<'_> {
    /// The RX metadata the steering program put in front of this received
    /// packet, if it did ([`XskSocketBuilder::rx_metadata`](super::XskSocketBuilder::rx_metadata)).
    /// Clears the mark, so the same bytes are never read twice (the chunk
    /// comes back for other packets). Only the first frame of a
    /// multi-buffer packet carries metadata.
    pub fn take_rx_metadata(&mut self) -> Option<RxMetadata> {
        let b = self.prefix_mut(RX_META_LEN)?;
        let m = RxMetadata::parse(b)?;
        b[28..32].fill(0);
        Some(m)
    }

    /// The completion timestamp the kernel wrote into this frame's TX
    /// metadata (a frame back from the completion ring, sent with
    /// [`TxRequest::timestamp`]); `None` when the UMEM has no TX metadata or
    /// the value is 0. Meaningful only where
    /// [`XskSocket::tx_metadata_support`](super::XskSocket::tx_metadata_support)
    /// says timestamps are supported.
    pub fn tx_timestamp(&self) -> Option<u64> {
        let len = self.umem().tx_metadata_len();
        if len == 0 {
            return None;
        }
        let b = self.prefix(len)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[8..16]);
        let flags = u64::from_ne_bytes(b[0..8].try_into().ok()?);
        let ts = u64::from_ne_bytes(ts);
        (flags & XDP_TXMD_FLAGS_TIMESTAMP != 0 && ts != 0).then_some(ts)
    }
}

impl Packet<'_> {
    /// [`Frame::take_rx_metadata`] of the first frame.
    pub fn take_rx_metadata(&mut self) -> Option<RxMetadata> {
        self.first_mut()?.take_rx_metadata()
    }
}

// ---------------------------------------------------------------------------
// TX metadata
// ---------------------------------------------------------------------------

/// `XDP_TXMD_FLAGS_TIMESTAMP`.
const XDP_TXMD_FLAGS_TIMESTAMP: u64 = 1 << 0;
/// `XDP_TXMD_FLAGS_CHECKSUM`.
const XDP_TXMD_FLAGS_CHECKSUM: u64 = 1 << 1;
/// A checksum the device (or kernel) should compute and store: the
/// one's-complement sum from `start` to the end of the packet, stored at
/// `start + offset` (`CHECKSUM_PARTIAL` semantics: that field must hold the
/// pseudo-header sum beforehand; see [`ChecksumRequest::udp_ipv4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumRequest {
    /// Offset from the packet start where summing starts.
    pub start: u16,
    /// Offset from `start` where the checksum goes.
    pub offset: u16,
}

impl ChecksumRequest {
    /// Prepares an Ethernet/IPv4/UDP frame for a UDP checksum offload:
    /// writes the pseudo-header sum into its checksum field and returns the
    /// request. `None` when the frame is not Ethernet/IPv4/UDP or is cut short.
    pub fn udp_ipv4(frame: &mut [u8]) -> Option<ChecksumRequest> {
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
            return None;
        }
        let ihl = ((frame[14] & 0x0f) as usize) * 4;
        if frame[14] >> 4 != 4 || ihl < 20 || frame[23] != 17 {
            return None;
        }
        let l4 = 14 + ihl;
        if frame.len() < l4 + 8 {
            return None;
        }
        let udp_len = u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]) as u32;
        let mut sum: u32 = 0;
        for w in frame[26..34].chunks(2) {
            sum += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
        sum += 17 + udp_len;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        frame[l4 + 6..l4 + 8].copy_from_slice(&(sum as u16).to_be_bytes());
        Some(ChecksumRequest {
            start: l4 as u16,
            offset: 6,
        })
    }
}

/// What to ask of the device for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxRequest {
    /// Compute and store an L4 checksum (`XDP_TXMD_FLAGS_CHECKSUM`).
    pub checksum: Option<ChecksumRequest>,
    /// Write a completion timestamp (`XDP_TXMD_FLAGS_TIMESTAMP`), read
    /// with [`Frame::tx_timestamp`] once the frame completes.
    pub timestamp: bool,
}

impl TxRequest {
    /// The `struct xsk_tx_metadata` bytes (native byte order).
    fn encode(&self) -> [u8; XSK_TX_METADATA_SIZE as usize] {
        let mut b = [0u8; XSK_TX_METADATA_SIZE as usize];
        let mut flags = 0u64;
        if self.timestamp {
            flags |= XDP_TXMD_FLAGS_TIMESTAMP;
        }
        if let Some(c) = self.checksum {
            flags |= XDP_TXMD_FLAGS_CHECKSUM;
            b[8..10].copy_from_slice(&c.start.to_ne_bytes());
            b[10..12].copy_from_slice(&c.offset.to_ne_bytes());
        }
        b[0..8].copy_from_slice(&flags.to_ne_bytes());
        b
    }
}

impl<'u> TxBatch<'_, 'u> {
    /// Queues `packet` with a TX metadata request: writes the
    /// `struct xsk_tx_metadata` in front of its first frame and sets
    /// `XDP_TX_METADATA` on its first descriptor (kernel 6.8). Check
    /// [`XskSocket::tx_metadata_support`](super::XskSocket::tx_metadata_support)
    /// first: what the device does not support is ignored by it.
    ///
    /// # Errors
    /// [`XskError::Unsupported`] when the UMEM has no TX metadata or the
    /// first frame has no room in front of its data; the packet comes back
    /// inside [`TxMetaPushError`] also when the batch is full.
    pub fn push_with_metadata(
        &mut self,
        packet: impl Into<Packet<'u>>,
        req: &TxRequest,
    ) -> Result<(), TxMetaPushError<'u>> {
        let mut packet = packet.into();
        let len = self.umem.tx_metadata_len();
        if len == 0 {
            return Err(TxMetaPushError {
                packet,
                error: Some(Box::new(XskError::Unsupported {
                    feature: "TX metadata",
                    reason: "the UMEM was registered without it: set UmemConfig::tx_metadata"
                        .into(),
                })),
            });
        }
        if let Some(c) = req.checksum {
            let first = packet.first().map_or(0, |f| f.len());
            if c.start as u32 + c.offset as u32 + 2 > first {
                return Err(TxMetaPushError {
                    packet,
                    error: Some(Box::new(XskError::Config(format!(
                        "checksum at {}+{} is beyond the first frame's {first} bytes",
                        c.start, c.offset
                    )))),
                });
            }
        }
        let Some(b) = packet.first_mut().and_then(|f| f.prefix_mut(len)) else {
            return Err(TxMetaPushError {
                packet,
                error: Some(Box::new(XskError::Unsupported {
                    feature: "TX metadata",
                    reason: "the frame's data starts too close to its chunk start".into(),
                })),
            });
        };
        b[..XSK_TX_METADATA_SIZE as usize].copy_from_slice(&req.encode());
        self.push_packet_opts(packet, XDP_TX_METADATA)
            .map_err(|packet| TxMetaPushError {
                packet,
                error: None,
            })
    }
}

/// A packet [`TxBatch::push_with_metadata`] gave back.
#[derive(Debug)]
pub struct TxMetaPushError<'u> {
    /// The packet, unsent.
    pub packet: Packet<'u>,
    /// Why, or `None` when the batch was merely full.
    pub error: Option<Box<XskError>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ts: u64, hash: u32, ty: u32, ts_st: i32, h_st: i32, len: u32, magic: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&ts.to_ne_bytes());
        b.extend_from_slice(&hash.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&ts_st.to_ne_bytes());
        b.extend_from_slice(&h_st.to_ne_bytes());
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&magic.to_ne_bytes());
        b
    }

    #[test]
    fn rx_metadata_decodes_the_programs_layout() {
        let m = RxMetadata::parse(&meta(123, 0xabcd, 8, 0, 0, 1514, RX_META_MAGIC)).unwrap();
        assert_eq!(m.timestamp, MetaValue::Value(123));
        assert_eq!(m.hash, MetaValue::Value((0xabcd, RssHashType(8))));
        assert!(m.hash.value().unwrap().1.is_l4());
        assert_eq!(m.len, 1514);
        let m = RxMetadata::parse(&meta(
            0,
            0,
            0,
            -libc::EOPNOTSUPP,
            -libc::ENODATA,
            60,
            RX_META_MAGIC,
        ))
        .unwrap();
        assert_eq!(m.timestamp, MetaValue::Unsupported);
        assert_eq!(m.hash, MetaValue::NoData);
        // A zero timestamp with status 0 is "no timestamp".
        let m = RxMetadata::parse(&meta(0, 1, 0, 0, -5, 60, RX_META_MAGIC)).unwrap();
        assert_eq!(m.timestamp, MetaValue::NoData);
        assert_eq!(m.hash, MetaValue::Error(5));
        assert!(RxMetadata::parse(&meta(1, 2, 3, 0, 0, 60, 0)).is_none());
        assert!(RxMetadata::parse(&[0u8; 8]).is_none());
    }

    #[test]
    fn tx_request_encodes_xsk_tx_metadata() {
        let b = TxRequest {
            checksum: Some(ChecksumRequest {
                start: 34,
                offset: 6,
            }),
            timestamp: true,
        }
        .encode();
        assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 3);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 34);
        assert_eq!(u16::from_ne_bytes([b[10], b[11]]), 6);
        assert_eq!(&b[12..], &[0u8; 12]);
        assert_eq!(TxRequest::default().encode(), [0u8; 24]);
    }

    #[test]
    fn udp_checksum_request_seeds_the_pseudo_header() {
        let spec = crate::wire::UdpFrame {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: std::net::Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 4242,
        };
        let mut f = vec![0u8; 100];
        let n = spec.emit(b"hello", 100, &mut f).unwrap();
        f.truncate(n);
        let full = f.clone();
        let req = ChecksumRequest::udp_ipv4(&mut f).unwrap();
        assert_eq!(
            req,
            ChecksumRequest {
                start: 34,
                offset: 6
            }
        );
        // Completing the sum over the UDP header and payload as a device
        // would gives the real checksum (or 0, meaning "none", if the
        // emitter left it out).
        let mut sum: u32 = 0;
        let seg = &f[34..];
        for w in seg.chunks(2) {
            let hi = w[0] as u32;
            let lo = *w.get(1).unwrap_or(&0) as u32;
            sum += (hi << 8) | lo;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let csum = !(sum as u16);
        let want = u16::from_be_bytes([full[40], full[41]]);
        if want != 0 {
            assert_eq!(csum, want);
        }
        let mut not_udp = full.clone();
        not_udp[23] = 6;
        assert!(ChecksumRequest::udp_ipv4(&mut not_udp).is_none());
        assert!(ChecksumRequest::udp_ipv4(&mut [0u8; 20]).is_none());
    }
}
