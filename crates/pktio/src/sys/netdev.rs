//! The generic-netlink `netdev` family (kernel 6.3): what a device's XDP
//! and AF_XDP support is, as the driver declares it — `xdp-features`
//! (including `rx-sg`, native multi-buffer), `xdp-zc-max-segs`,
//! `xdp-rx-metadata-features` (the metadata kfuncs it implements) and
//! `xsk-features` (TX metadata offloads).
//!
//! Messages are built and parsed by hand (a few dozen bytes each): resolve
//! the family id with `CTRL_CMD_GETFAMILY`, then `NETDEV_CMD_DEV_GET` for
//! one ifindex. The parsers are pure and unit-tested.
//!
//! uapi: `include/uapi/linux/netdev.h`, `include/uapi/linux/genetlink.h`,
//! `include/uapi/linux/netlink.h` at v6.18.

use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::rx;
use crate::error::SysError;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NETDEV_A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;

/// `enum netdev_xdp_act`: `NETDEV_XDP_ACT_XSK_ZEROCOPY`.
pub(crate) const XDP_ACT_XSK_ZEROCOPY: u64 = 1 << 3;
/// `NETDEV_XDP_ACT_RX_SG`: native XDP handles multi-buffer frames.
pub(crate) const XDP_ACT_RX_SG: u64 = 1 << 5;
/// `enum netdev_xdp_rx_metadata`: `NETDEV_XDP_RX_METADATA_TIMESTAMP`.
pub(crate) const RX_META_TIMESTAMP: u64 = 1 << 0;
/// `NETDEV_XDP_RX_METADATA_HASH`.
pub(crate) const RX_META_HASH: u64 = 1 << 1;
/// `enum netdev_xsk_flags`: `NETDEV_XSK_FLAGS_TX_TIMESTAMP`.
pub(crate) const XSK_TX_TIMESTAMP: u64 = 1 << 0;
/// `NETDEV_XSK_FLAGS_TX_CHECKSUM`.
pub(crate) const XSK_TX_CHECKSUM: u64 = 1 << 1;

/// What `NETDEV_CMD_DEV_GET` says about one device.
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

/// Appends one attribute (`struct nlattr` + payload, padded to 4).
fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// A generic-netlink request: `nlmsghdr`, `genlmsghdr`, attributes.
fn request(family: u16, cmd: u8, version: u8, seq: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b.extend_from_slice(&[cmd, version, 0, 0]);
    for (ty, p) in attrs {
        put_attr(&mut b, *ty, p);
    }
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&family.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The attributes of the first message in `reply` (after the genl header),
/// or the kernel's errno for an `NLMSG_ERROR`.
fn parse_reply(reply: &[u8]) -> Result<Vec<(u16, &[u8])>, i32> {
    let len = u32_at(reply, 0).ok_or(libc::EBADMSG)? as usize;
    let ty = u16_at(reply, 4).ok_or(libc::EBADMSG)?;
    let msg = reply.get(..len).ok_or(libc::EBADMSG)?;
    if ty == NLMSG_ERROR {
        let err = u32_at(msg, 16).ok_or(libc::EBADMSG)? as i32;
        return Err(if err < 0 { -err } else { libc::EBADMSG });
    }
    let mut attrs = Vec::new();
    let mut at = 20;
    while at + 4 <= msg.len() {
        let alen = u16_at(msg, at).ok_or(libc::EBADMSG)? as usize;
        let aty = u16_at(msg, at + 2).ok_or(libc::EBADMSG)? & 0x3fff;
        if alen < 4 || at + alen > msg.len() {
            return Err(libc::EBADMSG);
        }
        attrs.push((aty, &msg[at + 4..at + alen]));
        at += (alen + 3) & !3;
    }
    Ok(attrs)
}

fn uint(p: &[u8]) -> u64 {
    match p.len() {
        1 => p[0] as u64,
        2 => u16::from_ne_bytes([p[0], p[1]]) as u64,
        4 => u32::from_ne_bytes([p[0], p[1], p[2], p[3]]) as u64,
        8 => u64::from_ne_bytes(p.try_into().unwrap_or([0; 8])),
        _ => 0,
    }
}

fn features_from(attrs: &[(u16, &[u8])]) -> DevFeatures {
    let mut f = DevFeatures::default();
    for (ty, p) in attrs {
        match *ty {
            NETDEV_A_DEV_XDP_FEATURES => f.xdp_features = uint(p),
            NETDEV_A_DEV_XDP_ZC_MAX_SEGS => f.zc_max_segs = uint(p) as u32,
            NETDEV_A_DEV_XDP_RX_METADATA_FEATURES => f.rx_metadata = uint(p),
            NETDEV_A_DEV_XSK_FEATURES => f.xsk_features = uint(p),
            _ => {}
        }
    }
    f
}

fn transact(fd: &OwnedFd, call: &'static str, req: &[u8]) -> Result<Vec<u8>, SysError> {
    rustix::net::send(fd, req, SendFlags::empty()).map_err(rx(call))?;
    let mut buf = vec![0u8; 16384];
    let n = rustix::net::recv(fd, &mut buf[..], RecvFlags::empty())
        .map_err(rx(call))?
        .0;
    buf.truncate(n);
    Ok(buf)
}

/// Asks the `netdev` generic-netlink family about device `ifindex` in the
/// calling thread's network namespace (kernel 6.3; `ENOENT` from the
/// family lookup on older kernels, `ENODEV` for a missing device).
pub(crate) fn dev_features(ifindex: u32) -> Result<DevFeatures, SysError> {
    const CALL: &str = "netlink(netdev, NETDEV_CMD_DEV_GET)";
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(rustix::net::netlink::GENERIC),
    )
    .map_err(rx(CALL))?;
    let req = request(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        1,
        1,
        &[(CTRL_ATTR_FAMILY_NAME, b"netdev\0")],
    );
    let reply = transact(&fd, CALL, &req)?;
    let attrs = parse_reply(&reply).map_err(|e| SysError::from_errno(CALL, e))?;
    let family = attrs
        .iter()
        .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
        .map(|(_, p)| uint(p) as u16)
        .ok_or_else(|| SysError::from_errno(CALL, libc::ENOENT))?;
    let req = request(
        family,
        NETDEV_CMD_DEV_GET,
        1,
        2,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    );
    let reply = transact(&fd, CALL, &req)?;
    let attrs = parse_reply(&reply).map_err(|e| SysError::from_errno(CALL, e))?;
    Ok(features_from(&attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let r = request(0x10, 3, 1, 7, &[(2, b"netdev\0")]);
        // 16 nlmsghdr + 4 genl + 4 nlattr + 7 name + 1 pad.
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(0x10));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert_eq!(&r[16..20], &[3, 1, 0, 0]);
        assert_eq!(u16_at(&r, 20), Some(11));
        assert_eq!(&r[24..31], b"netdev\0");
    }

    #[test]
    fn parses_a_dev_get_reply() {
        // A reply as the kernel builds it: header, genl header, attributes.
        let mut b = vec![0u8; 16];
        b.extend_from_slice(&[1, 1, 0, 0]);
        put_attr(&mut b, NETDEV_A_DEV_IFINDEX, &5u32.to_ne_bytes());
        put_attr(&mut b, NETDEV_A_DEV_XDP_FEATURES, &0x27u64.to_ne_bytes());
        put_attr(&mut b, NETDEV_A_DEV_XDP_ZC_MAX_SEGS, &1u32.to_ne_bytes());
        put_attr(
            &mut b,
            NETDEV_A_DEV_XDP_RX_METADATA_FEATURES,
            &7u64.to_ne_bytes(),
        );
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b[4..6].copy_from_slice(&30u16.to_ne_bytes());
        let attrs = parse_reply(&b).unwrap();
        let f = features_from(&attrs);
        assert_eq!(f.xdp_features, 0x27);
        assert!(f.xdp_features & XDP_ACT_RX_SG != 0);
        assert_eq!(f.zc_max_segs, 1);
        assert_eq!(f.rx_metadata & (RX_META_HASH | RX_META_TIMESTAMP), 3);
        assert_eq!(f.xsk_features, 0);
    }

    #[test]
    fn error_replies_give_the_errno() {
        let mut b = vec![0u8; 36];
        b[0..4].copy_from_slice(&36u32.to_ne_bytes());
        b[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b[16..20].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        assert_eq!(parse_reply(&b).unwrap_err(), libc::ENODEV);
        assert_eq!(parse_reply(&[1, 2]).unwrap_err(), libc::EBADMSG);
        // An attribute running past the message.
        let mut c = vec![0u8; 24];
        c[0..4].copy_from_slice(&24u32.to_ne_bytes());
        c[20..22].copy_from_slice(&40u16.to_ne_bytes());
        assert_eq!(parse_reply(&c).unwrap_err(), libc::EBADMSG);
    }
}
