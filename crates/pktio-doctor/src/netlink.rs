//! Netlink plumbing shared by the rtnetlink, ethtool and netdev readers: a
//! blocking socket that sends one request and collects the replies, a
//! generic-netlink payload that carries raw attributes (for families no crate
//! models: `ethtool`, `netdev`), and a small attribute reader/writer.
//!
//! Message framing comes from `netlink-packet-core`, the generic header and
//! the controller (family lookup) from `netlink-packet-generic`, the socket
//! from `netlink-sys`. The attribute helpers are pure and tested here.

use std::io;

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NetlinkSerializable, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
    NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols, Socket, SocketAddr};

/// Attribute type bits without the nested / byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// An attribute to send. Nested attributes carry `NLA_F_NESTED`, which the
/// ethtool and netdev families require. (Requests use `U32` and `Nest`; the
/// other kinds build reply fixtures in tests.)
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// A `u32` (native endian).
    U32(u16, u32),
    /// A `u8`.
    U8(u16, u8),
    /// A NUL-terminated string.
    Str(u16, String),
    /// A flag: present or absent, no payload.
    Flag(u16),
    /// Nested attributes.
    Nest(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::U32(..) => 4,
            Attr::U8(..) => 1,
            Attr::Flag(_) => 0,
            Attr::Str(_, s) => s.len() + 1,
            Attr::Nest(_, v) => v.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::U32(k, _) | Attr::U8(k, _) | Attr::Str(k, _) | Attr::Flag(k) => *k,
            Attr::Nest(k, _) => *k | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Attr::U32(_, v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Attr::U8(_, v) => buffer[0] = *v,
            Attr::Flag(_) => {}
            Attr::Str(_, s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Attr::Nest(_, v) => v.as_slice().emit(buffer),
        }
    }
}

/// Serialises attributes into the bytes of a message payload.
pub fn encode(attrs: &[Attr]) -> Vec<u8> {
    let mut buf = vec![0u8; attrs.buffer_len()];
    attrs.emit(&mut buf);
    buf
}

/// Parsed attributes of one level: type (flags masked off) and value bytes.
#[derive(Debug, Clone, Default)]
pub struct Attrs<'a> {
    list: Vec<(u16, &'a [u8])>,
}

impl<'a> Attrs<'a> {
    /// Splits `buf` into attributes.
    ///
    /// # Errors
    /// A truncated or malformed attribute.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut list = Vec::new();
        for nla in NlasIterator::new(buf) {
            let nla: NlaBuffer<&'a [u8]> = nla?;
            let kind = nla.kind() & NLA_TYPE_MASK;
            let len = nla.value_length();
            let inner: &'a [u8] = nla.into_inner();
            let value = inner
                .get(4..4 + len)
                .ok_or_else(|| DecodeError::from("attribute shorter than its header says"))?;
            list.push((kind, value));
        }
        Ok(Attrs { list })
    }

    /// The value bytes of the first attribute of type `kind`.
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.list.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }

    /// All attributes of type `kind`, in order.
    pub fn all(&self, kind: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.list
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, v)| *v)
    }

    /// Whether a (flag) attribute is present.
    pub fn has(&self, kind: u16) -> bool {
        self.get(kind).is_some()
    }

    /// A `u8` attribute.
    pub fn u8(&self, kind: u16) -> Option<u8> {
        self.get(kind).and_then(|v| v.first().copied())
    }

    /// A `u32` attribute.
    pub fn u32(&self, kind: u16) -> Option<u32> {
        self.get(kind)
            .and_then(|v| v.get(..4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    }

    /// A `u64` attribute.
    pub fn u64(&self, kind: u16) -> Option<u64> {
        self.get(kind)
            .and_then(|v| v.get(..8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    }

    /// A variable-width unsigned attribute (netlink `uint`: 4 or 8 bytes).
    pub fn uint(&self, kind: u16) -> Option<u64> {
        match self.get(kind)?.len() {
            8 => self.u64(kind),
            4 => self.u32(kind).map(u64::from),
            _ => None,
        }
    }

    /// A string attribute (trailing NUL removed).
    pub fn str(&self, kind: u16) -> Option<String> {
        self.get(kind).map(|v| {
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
    }

    /// The attributes nested in attribute `kind`.
    pub fn nested(&self, kind: u16) -> Option<Attrs<'a>> {
        self.get(kind).and_then(|v| Attrs::parse(v).ok())
    }
}

/// A generic-netlink payload of raw attributes, for families without a crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGenl {
    /// Command.
    pub cmd: u8,
    /// Family version.
    pub version: u8,
    /// Attribute bytes.
    pub attrs: Vec<u8>,
}

impl GenlFamily for RawGenl {
    fn family_name() -> &'static str {
        // Resolved by name through `Nl::family_id`, never through this.
        ""
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        self.version
    }
}

impl Emitable for RawGenl {
    fn buffer_len(&self) -> usize {
        self.attrs.len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        buffer[..self.attrs.len()].copy_from_slice(&self.attrs);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for RawGenl {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(RawGenl {
            cmd: header.cmd,
            version: header.version,
            attrs: buf.to_vec(),
        })
    }
}

/// A netlink message with a raw payload, for protocols without a crate
/// (`NETLINK_SOCK_DIAG` for AF_XDP sockets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNl {
    /// `nlmsg_type`.
    pub ty: u16,
    /// Everything after the netlink header.
    pub payload: Vec<u8>,
}

impl NetlinkSerializable for RawNl {
    fn message_type(&self) -> u16 {
        self.ty
    }
    fn buffer_len(&self) -> usize {
        self.payload.len()
    }
    fn serialize(&self, buffer: &mut [u8]) {
        buffer[..self.payload.len()].copy_from_slice(&self.payload);
    }
}

impl NetlinkDeserializable for RawNl {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        Ok(RawNl {
            ty: header.message_type,
            payload: payload.to_vec(),
        })
    }
}

/// A blocking netlink socket for request / reply exchanges.
#[derive(Debug)]
pub struct Nl {
    sock: Socket,
    seq: u32,
}

/// Largest netlink datagram we accept (dumps of big links fit easily).
const RECV_BUF: usize = 1 << 20;

impl Nl {
    /// `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`.
    pub fn route() -> io::Result<Nl> {
        Nl::open(protocols::NETLINK_ROUTE)
    }

    /// `socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`.
    pub fn generic() -> io::Result<Nl> {
        Nl::open(protocols::NETLINK_GENERIC)
    }

    /// `socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG)`.
    pub fn sock_diag() -> io::Result<Nl> {
        Nl::open(protocols::NETLINK_SOCK_DIAG)
    }

    fn open(proto: isize) -> io::Result<Nl> {
        let mut sock = Socket::new(proto)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Extended acks give the kernel's error text; not essential.
        let _ = sock.set_ext_ack(true);
        Ok(Nl { sock, seq: 0 })
    }

    /// Sends `inner` and collects every reply until the ACK (for a plain
    /// request) or `NLMSG_DONE` (for a dump).
    ///
    /// # Errors
    /// The socket's errors, a kernel NACK as the errno it carries, or a
    /// reply that does not decode (`InvalidData`).
    pub fn request<T>(&mut self, inner: T, dump: bool) -> io::Result<Vec<T>>
    where
        T: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock.send(&out, 0)?;

        let mut replies = Vec::new();
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = self.sock.recv(&mut &mut buf[..], 0)?.min(RECV_BUF);
            let mut off = 0;
            while off < n {
                let frame = NetlinkBuffer::new_checked(&buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = frame.length() as usize;
                if len == 0 {
                    break;
                }
                let bytes = &buf[off..off + len];
                off += (len + 3) & !3;
                let m = NetlinkMessage::<T>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(i) => {
                        replies.push(i);
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(_) => Err(e.to_io()),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }

    /// Looks up a generic-netlink family id by name (`CTRL_CMD_GETFAMILY`).
    ///
    /// # Errors
    /// `ENOENT` when this kernel does not have the family.
    pub fn family_id(&mut self, name: &str) -> io::Result<u16> {
        let req = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
        });
        let replies = self.request(req, false)?;
        replies
            .into_iter()
            .flat_map(|m| m.payload.nlas)
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(id),
                _ => None,
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Sends a raw generic-netlink request to `family` and returns the
    /// attribute bytes of each reply.
    ///
    /// # Errors
    /// As [`Nl::request`].
    pub fn genl(
        &mut self,
        family: u16,
        cmd: u8,
        version: u8,
        attrs: &[Attr],
        dump: bool,
    ) -> io::Result<Vec<Vec<u8>>> {
        let mut msg = GenlMessage::from_payload(RawGenl {
            cmd,
            version,
            attrs: encode(attrs),
        });
        msg.set_resolved_family_id(family);
        let replies = self.request(msg, dump)?;
        Ok(replies.into_iter().map(|m| m.payload.attrs).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip_with_nesting() {
        let bytes = encode(&[
            Attr::Nest(1, vec![Attr::U32(1, 7), Attr::Str(2, "veth0".into())]),
            Attr::U32(6, 256),
            Attr::U8(11, 1),
        ]);
        assert_eq!(bytes.len() % 4, 0);
        let a = Attrs::parse(&bytes).unwrap();
        let h = a.nested(1).unwrap();
        assert_eq!(h.u32(1), Some(7));
        assert_eq!(h.str(2).as_deref(), Some("veth0"));
        assert_eq!(a.u32(6), Some(256));
        assert_eq!(a.u8(11), Some(1));
        assert!(a.u32(9).is_none());
        // The nested flag is set on the wire and masked off when reading.
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        assert_eq!(kind, 1 | NLA_F_NESTED);
    }

    #[test]
    fn uint_accepts_both_widths() {
        let mut bytes = encode(&[Attr::U32(8, 5)]);
        // A u64 attribute by hand: len 12, type 9, value 1 << 40.
        bytes.extend_from_slice(&12u16.to_ne_bytes());
        bytes.extend_from_slice(&9u16.to_ne_bytes());
        bytes.extend_from_slice(&(1u64 << 40).to_ne_bytes());
        let a = Attrs::parse(&bytes).unwrap();
        assert_eq!(a.uint(8), Some(5));
        assert_eq!(a.uint(9), Some(1 << 40));
    }

    #[test]
    fn truncated_attributes_are_an_error_not_a_panic() {
        let bytes = encode(&[Attr::U32(1, 1)]);
        assert!(Attrs::parse(&bytes[..6]).is_err());
        // A header claiming more than the buffer has.
        let bad = [200u8, 0, 1, 0, 0, 0, 0, 0];
        assert!(Attrs::parse(&bad).is_err());
    }
}
