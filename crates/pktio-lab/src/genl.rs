//! A small synchronous client for the kernel's `netdev` generic-netlink
//! family (`Documentation/netlink/specs/netdev.yaml`), just enough for NAPI
//! placement: `napi-get` (dump, filtered by ifindex) and `napi-set` with the
//! `threaded` attribute.
//!
//! Messages are built by hand (`nlmsghdr`, `genlmsghdr`, then flat
//! attributes) and sent over a `netlink-sys` socket: the three commands need
//! a few dozen bytes, where `netlink-packet-generic` would still need the
//! whole family's payload type written out.
//!
//! Like rtnetlink, a generic-netlink socket talks to the network namespace
//! of the thread that created it (the `netdev` family is `netnsok`), so a
//! [`Genl`] made on a thread inside a lab's namespace sees that lab's
//! interfaces and nothing else.

use netlink_packet_core::NLM_F_DUMP;
use netlink_sys::protocols::NETLINK_GENERIC;

use crate::error::{LabError, Result};
use crate::nlsock::{NlSocket, NLMSG_HDRLEN};

/// `GENL_ID_CTRL` (`<linux/genetlink.h>`): the controller's family id.
const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `NETDEV_FAMILY_NAME` (`<linux/netdev.h>`).
const NETDEV_FAMILY_NAME: &str = "netdev";
/// `NETDEV_FAMILY_VERSION`.
const NETDEV_FAMILY_VERSION: u8 = 1;
/// `NETDEV_CMD_NAPI_GET` (Linux 6.9+).
const NETDEV_CMD_NAPI_GET: u8 = 11;
/// `NETDEV_CMD_NAPI_SET` (Linux 6.13+; `threaded` since 6.17).
const NETDEV_CMD_NAPI_SET: u8 = 14;
/// `NETDEV_A_NAPI_IFINDEX` (u32).
const NETDEV_A_NAPI_IFINDEX: u16 = 1;
/// `NETDEV_A_NAPI_ID` (u32).
const NETDEV_A_NAPI_ID: u16 = 2;
/// `NETDEV_A_NAPI_PID` (u32): the NAPI kthread, present only when threaded.
const NETDEV_A_NAPI_PID: u16 = 4;
/// `NETDEV_A_NAPI_THREADED` (u32, `enum netdev_napi_threaded`: 0 disabled,
/// 1 enabled).
const NETDEV_A_NAPI_THREADED: u16 = 8;

/// Size of `struct genlmsghdr`.
const GENL_HDRLEN: usize = 4;

/// The attributes of one reply: (type, payload) pairs.
type Attrs = Vec<(u16, Vec<u8>)>;

/// One NAPI instance as `napi-get` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NapiInfo {
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

/// A generic-netlink socket bound to the namespace it was created in, with
/// the `netdev` family's id resolved.
pub(crate) struct Genl {
    sock: NlSocket,
    netdev: u16,
}

impl Genl {
    /// Opens a `NETLINK_GENERIC` socket in the calling thread's namespace
    /// and looks up the `netdev` family (`CTRL_CMD_GETFAMILY`).
    ///
    /// # Errors
    /// [`LabError::Unsupported`] if the kernel has no `netdev` family
    /// (before Linux 6.5); [`LabError::Sys`]/[`LabError::Netlink`] otherwise.
    pub fn new() -> Result<Self> {
        let mut g = Genl {
            sock: NlSocket::new(NETLINK_GENERIC, "opening a generic-netlink socket")?,
            netdev: 0,
        };
        let mut name = NETDEV_FAMILY_NAME.as_bytes().to_vec();
        name.push(0);
        let mut attrs = Vec::new();
        put_attr(&mut attrs, CTRL_ATTR_FAMILY_NAME, &name);
        let op = "looking up the `netdev` generic-netlink family (CTRL_CMD_GETFAMILY)";
        let replies = match g.request(op, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &attrs, 0) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(LabError::Unsupported(
                    "this kernel has no `netdev` generic-netlink family (Linux 6.5 or later \
                     has it; NAPI placement needs 6.17 or later)"
                        .into(),
                ))
            }
            Err(e) => return Err(e),
        };
        g.netdev = replies
            .iter()
            .flat_map(|attrs| attrs.iter())
            .find(|(t, v)| *t == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
            .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
            .ok_or_else(|| LabError::Protocol {
                op: op.into(),
                detail: "no CTRL_ATTR_FAMILY_ID in the reply".into(),
            })?;
        Ok(g)
    }

    /// `napi-get` dump of the NAPI instances of interface `ifindex`.
    ///
    /// # Errors
    /// [`LabError::Unsupported`] before Linux 6.9 (no `napi-get`).
    pub fn napis(&mut self, ifindex: u32, what: &str) -> Result<Vec<NapiInfo>> {
        let mut attrs = Vec::new();
        put_attr(&mut attrs, NETDEV_A_NAPI_IFINDEX, &ifindex.to_ne_bytes());
        let op = format!("listing the NAPI instances of {what} (netdev napi-get)");
        let replies = self
            .request(
                &op,
                self.netdev,
                NETDEV_CMD_NAPI_GET,
                NETDEV_FAMILY_VERSION,
                &attrs,
                NLM_F_DUMP,
            )
            .map_err(|e| unsupported_if_unknown(e, "netdev napi-get (Linux 6.9 or later)"))?;
        let mut out = Vec::new();
        for attrs in replies {
            let mut napi = NapiInfo {
                id: 0,
                ifindex: 0,
                pid: None,
                threaded: None,
            };
            for (t, v) in &attrs {
                match *t {
                    NETDEV_A_NAPI_ID => napi.id = get_uint(v) as u32,
                    NETDEV_A_NAPI_IFINDEX => napi.ifindex = get_uint(v) as u32,
                    NETDEV_A_NAPI_PID => napi.pid = Some(get_uint(v) as u32),
                    NETDEV_A_NAPI_THREADED => napi.threaded = Some(get_uint(v) != 0),
                    _ => {}
                }
            }
            // Older kernels ignore the ifindex filter of the dump.
            if napi.ifindex == ifindex && napi.id != 0 {
                out.push(napi);
            }
        }
        Ok(out)
    }

    /// `napi-set` of NAPI instance `id` with `threaded` = 1 or 0. Turning
    /// it on starts the `napi/<if>-<id>` kthread; turning it off stops it.
    pub fn set_napi_threaded(&mut self, id: u32, on: bool, what: &str) -> Result<()> {
        let mut attrs = Vec::new();
        put_attr(&mut attrs, NETDEV_A_NAPI_ID, &id.to_ne_bytes());
        put_attr(
            &mut attrs,
            NETDEV_A_NAPI_THREADED,
            &u32::from(on).to_ne_bytes(),
        );
        let op = format!(
            "switching threaded NAPI {} for NAPI {id} of {what} (netdev napi-set threaded)",
            if on { "on" } else { "off" }
        );
        self.request(
            &op,
            self.netdev,
            NETDEV_CMD_NAPI_SET,
            NETDEV_FAMILY_VERSION,
            &attrs,
            0,
        )
        .map(|_| ())
        .map_err(|e| {
            unsupported_if_unknown(e, "netdev napi-set with `threaded` (Linux 6.17 or later)")
        })
    }

    /// Sends one request (`genlmsghdr` `cmd`/`version`, then `attrs`) and
    /// collects the attributes of every reply.
    fn request(
        &mut self,
        op: &str,
        family: u16,
        cmd: u8,
        version: u8,
        attrs: &[u8],
        flags: u16,
    ) -> Result<Vec<Attrs>> {
        let build = |nl_flags: u16, seq: u32| {
            let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
            let mut msg = Vec::with_capacity(len);
            msg.extend_from_slice(&(len as u32).to_ne_bytes());
            msg.extend_from_slice(&family.to_ne_bytes());
            msg.extend_from_slice(&nl_flags.to_ne_bytes());
            msg.extend_from_slice(&seq.to_ne_bytes());
            msg.extend_from_slice(&0u32.to_ne_bytes());
            msg.extend_from_slice(&[cmd, version, 0, 0]);
            msg.extend_from_slice(attrs);
            msg
        };
        let parse = |raw: &[u8]| {
            let body = &raw[NLMSG_HDRLEN..];
            Ok((body.len() >= GENL_HDRLEN).then(|| parse_attrs(&body[GENL_HDRLEN..])))
        };
        self.sock.request(op, flags, build, parse)
    }
}

/// A kernel that does not know a command answers `EOPNOTSUPP`; one that
/// does not know an attribute answers `EINVAL` with "Unknown attribute
/// type" (strict validation): both become [`LabError::Unsupported`].
fn unsupported_if_unknown(e: LabError, needs: &str) -> LabError {
    let unknown = match &e {
        LabError::Netlink {
            source, ext_ack, ..
        } => {
            source.raw_os_error() == Some(libc::EOPNOTSUPP)
                || (source.raw_os_error() == Some(libc::EINVAL)
                    && ext_ack
                        .as_deref()
                        .is_some_and(|m| m.contains("Unknown attribute")))
        }
        _ => false,
    };
    if unknown {
        LabError::Unsupported(format!("{e}: this kernel lacks {needs}"))
    } else {
        e
    }
}

/// Appends one attribute (`struct nlattr` + payload, padded to 4 bytes).
fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + ((4 - len % 4) % 4), 0);
}

/// Splits a flat attribute stream into (type without the nested/byte-order
/// flags, payload) pairs; a malformed tail is ignored.
fn parse_attrs(mut b: &[u8]) -> Attrs {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, b[4..len].to_vec()));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

/// An `NLA_U32` or `NLA_UINT` (4 or 8 bytes) attribute; anything else is 0.
fn get_uint(v: &[u8]) -> u64 {
    match v.len() {
        4 => u64::from(u32::from_ne_bytes([v[0], v[1], v[2], v[3]])),
        8 => u64::from_ne_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn attrs_round_trip() {
        let mut b = Vec::new();
        put_attr(&mut b, NETDEV_A_NAPI_ID, &441u32.to_ne_bytes());
        put_attr(&mut b, CTRL_ATTR_FAMILY_NAME, b"netdev\0");
        put_attr(&mut b, NETDEV_A_NAPI_THREADED, &1u64.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = parse_attrs(&b);
        assert_eq!(a.len(), 3);
        assert_eq!(get_uint(&a[0].1), 441);
        assert_eq!(a[1], (CTRL_ATTR_FAMILY_NAME, b"netdev\0".to_vec()));
        assert_eq!(get_uint(&a[2].1), 1);
        assert_eq!(get_uint(&[1, 2]), 0);
    }

    #[test]
    fn unknown_attribute_becomes_unsupported() {
        let e = LabError::Netlink {
            op: "x".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
            ext_ack: Some("Unknown attribute type".into()),
        };
        assert!(matches!(
            unsupported_if_unknown(e, "y"),
            LabError::Unsupported(_)
        ));
        let e = LabError::Netlink {
            op: "x".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
            ext_ack: None,
        };
        assert!(matches!(
            unsupported_if_unknown(e, "y"),
            LabError::Netlink { .. }
        ));
    }
}
