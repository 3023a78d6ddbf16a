//! The `netdev` family's `dev-get` for [`crate::xdp::metadata`], in the
//! shape it reads: a thin adapter over `pktio_host::netlink::netdev`, which
//! holds the one netdev client (no kernel call of its own here).

use pktio_host::netlink::netdev::{self, rx_meta, xdp_act, xsk_flags, Netdev};
use pktio_host::HostError;

use crate::error::SysError;

/// `enum netdev_xdp_act`: `NETDEV_XDP_ACT_XSK_ZEROCOPY`.
pub(crate) const XDP_ACT_XSK_ZEROCOPY: u64 = xdp_act::XSK_ZEROCOPY;
/// `NETDEV_XDP_ACT_RX_SG`: native XDP handles multi-buffer frames.
pub(crate) const XDP_ACT_RX_SG: u64 = xdp_act::RX_SG;
/// `enum netdev_xdp_rx_metadata`: `NETDEV_XDP_RX_METADATA_TIMESTAMP`.
pub(crate) const RX_META_TIMESTAMP: u64 = rx_meta::TIMESTAMP;
/// `NETDEV_XDP_RX_METADATA_HASH`.
pub(crate) const RX_META_HASH: u64 = rx_meta::HASH;
/// `enum netdev_xsk_flags`: `NETDEV_XSK_FLAGS_TX_TIMESTAMP`.
pub(crate) const XSK_TX_TIMESTAMP: u64 = xsk_flags::TX_TIMESTAMP;
/// `NETDEV_XSK_FLAGS_TX_CHECKSUM`.
pub(crate) const XSK_TX_CHECKSUM: u64 = xsk_flags::TX_CHECKSUM;

/// What `NETDEV_CMD_DEV_GET` says about one device (absent attributes as 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DevFeatures {
    /// `xdp-features` (`NETDEV_XDP_ACT_*`).
    pub(crate) xdp_features: u64,
    /// `xdp-zc-max-segs`: descriptors per packet in zero-copy TX (1 without multi-buffer).
    pub(crate) zc_max_segs: u32,
    /// `xdp-rx-metadata-features` (`NETDEV_XDP_RX_METADATA_*`).
    pub(crate) rx_metadata: u64,
    /// `xsk-features` (`NETDEV_XSK_FLAGS_*`, kernel 6.8; 0 before).
    pub(crate) xsk_features: u64,
}

impl From<netdev::DevFeatures> for DevFeatures {
    fn from(f: netdev::DevFeatures) -> Self {
        DevFeatures {
            xdp_features: f.xdp,
            zc_max_segs: f.zc_max_segs.unwrap_or(0),
            rx_metadata: f.rx_metadata.unwrap_or(0),
            xsk_features: f.xsk.unwrap_or(0),
        }
    }
}

/// Asks the `netdev` generic-netlink family about device `ifindex` in the
/// calling thread's network namespace (kernel 6.3; `ENOENT` on older
/// kernels, which have no such family; `ENODEV` for a missing device).
pub(crate) fn dev_features(ifindex: u32) -> Result<DevFeatures, SysError> {
    const CALL: &str = "netlink(netdev, NETDEV_CMD_DEV_GET)";
    match Netdev::open().and_then(|mut n| n.dev(ifindex)) {
        Ok(f) => Ok(f.into()),
        Err(HostError::Unsupported(_)) => Err(SysError::from_errno(CALL, libc::ENOENT)),
        Err(e) => Err(crate::host::sys_error(CALL)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_attributes_read_as_zero() {
        let f = DevFeatures::from(netdev::DevFeatures {
            xdp: 0x27,
            zc_max_segs: Some(1),
            rx_metadata: None,
            xsk: Some(XSK_TX_CHECKSUM),
        });
        assert!(f.xdp_features & XDP_ACT_RX_SG != 0);
        assert_eq!((f.zc_max_segs, f.rx_metadata), (1, 0));
        assert_eq!(f.xsk_features, XSK_TX_CHECKSUM);
    }

    #[test]
    fn loopback_answers_or_names_the_missing_family() {
        match dev_features(1) {
            Ok(f) => assert_eq!(f.xdp_features & XDP_ACT_XSK_ZEROCOPY, 0),
            Err(e) => assert_eq!(e.errno(), Some(libc::ENOENT), "{e}"),
        }
        let e = dev_features(0x7fff_fff0).unwrap_err();
        assert!(
            matches!(e.errno(), Some(libc::ENODEV | libc::ENOENT)),
            "{e}"
        );
    }
}
