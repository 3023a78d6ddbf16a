//! Generic netlink over [`NlSocket`]: the family lookup
//! (`CTRL_CMD_GETFAMILY`) and requests of raw attributes to a family.
//!
//! Messages are built by hand (`nlmsghdr`, `genlmsghdr`, then attributes
//! from [`encode`]): the families pktio uses need a few dozen bytes each.

use netlink_packet_core::NLM_F_DUMP;

use super::{encode, message, Attr, Attrs, NlSocket, NETLINK_GENERIC, NLMSG_HDRLEN};
use crate::error::{HostError, Result};

/// `GENL_ID_CTRL` (`<linux/genetlink.h>`): the controller's family id.
const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;

/// A generic-netlink socket bound to the namespace it was created in.
#[derive(Debug)]
pub struct Genl {
    sock: NlSocket,
}

/// One generic-netlink request: family, command, version and attributes.
#[derive(Debug, Clone, Copy)]
pub struct GenlRequest<'a> {
    /// The family id ([`Genl::family_id`]).
    pub family: u16,
    /// `genlmsghdr.cmd`.
    pub cmd: u8,
    /// `genlmsghdr.version`.
    pub version: u8,
    /// The attributes.
    pub attrs: &'a [Attr],
    /// A dump (`NLM_F_DUMP`) rather than a plain request.
    pub dump: bool,
}

/// A generic-netlink message: `nlmsghdr`, `genlmsghdr` (`cmd`, `version`),
/// then the attribute bytes.
pub fn genl_message(
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: &[u8],
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(GENL_HDRLEN + attrs.len());
    payload.extend_from_slice(&[cmd, version, 0, 0]);
    payload.extend_from_slice(attrs);
    message(family, flags, seq, &payload)
}

/// The attribute bytes of one generic-netlink reply (after both headers),
/// `None` for a message too short to have a `genlmsghdr`.
pub fn reply_attrs(raw: &[u8]) -> Option<&[u8]> {
    raw.get(NLMSG_HDRLEN + GENL_HDRLEN..)
}

impl Genl {
    /// Opens a `NETLINK_GENERIC` socket in the calling thread's namespace.
    ///
    /// # Errors
    /// [`HostError::Sys`].
    pub fn open() -> Result<Self> {
        Ok(Genl {
            sock: NlSocket::new(NETLINK_GENERIC, "opening a generic-netlink socket")?,
        })
    }

    /// Looks up a family id by name (`CTRL_CMD_GETFAMILY`).
    ///
    /// # Errors
    /// [`HostError::Netlink`] with `ENOENT` when this kernel does not have
    /// the family.
    pub fn family_id(&mut self, name: &str) -> Result<u16> {
        let op = format!("looking up the `{name}` generic-netlink family (CTRL_CMD_GETFAMILY)");
        let replies = self.request(
            &op,
            GenlRequest {
                family: GENL_ID_CTRL,
                cmd: CTRL_CMD_GETFAMILY,
                version: 1,
                attrs: &[Attr::Str(CTRL_ATTR_FAMILY_NAME, name.to_string())],
                dump: false,
            },
        )?;
        replies
            .iter()
            .find_map(|r| Attrs::parse_lenient(r).u16(CTRL_ATTR_FAMILY_ID))
            .ok_or_else(|| HostError::protocol(op, "no CTRL_ATTR_FAMILY_ID in the reply"))
    }

    /// Sends one request and returns the attribute bytes of every reply.
    ///
    /// # Errors
    /// As [`NlSocket::request`].
    pub fn request(&mut self, op: &str, req: GenlRequest<'_>) -> Result<Vec<Vec<u8>>> {
        let attrs = encode(req.attrs);
        let flags = if req.dump { NLM_F_DUMP } else { 0 };
        let build =
            |nl_flags, seq| genl_message(req.family, nl_flags, seq, req.cmd, req.version, &attrs);
        let parse = |raw: &[u8]| Ok(reply_attrs(raw).map(<[u8]>::to_vec));
        self.sock.request(op, flags, build, parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let attrs = encode(&[Attr::Str(CTRL_ATTR_FAMILY_NAME, "netdev".into())]);
        let r = genl_message(0x10, 1, 7, 3, 1, &attrs);
        // 16 nlmsghdr + 4 genl + 4 nlattr + 7 name + 1 pad.
        assert_eq!(r.len(), 32);
        assert_eq!(&r[0..4], &32u32.to_ne_bytes());
        assert_eq!(&r[4..6], &0x10u16.to_ne_bytes());
        assert_eq!(&r[8..12], &7u32.to_ne_bytes());
        assert_eq!(&r[16..20], &[3, 1, 0, 0]);
        assert_eq!(&r[20..22], &11u16.to_ne_bytes());
        assert_eq!(&r[24..31], b"netdev\0");
        assert_eq!(reply_attrs(&r), Some(&attrs[..]));
        assert_eq!(reply_attrs(&r[..18]), None);
    }

    #[test]
    fn unknown_families_are_enoent() {
        let mut g = Genl::open().unwrap();
        assert!(g.family_id("nlctrl").is_ok());
        let e = g.family_id("pktio-no-such").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    }
}
