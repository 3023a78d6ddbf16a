//! Netlink attributes (`struct nlattr`): a writer ([`Attr`], [`encode`])
//! and a reader ([`Attrs`]) for the families no crate models (`netdev`,
//! `ethtool`, `sock_diag`). Pure code, tested here.

use netlink_packet_core::{DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, NLA_F_NESTED};

/// Attribute type bits without the nested / byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// An attribute to send. Nested attributes carry `NLA_F_NESTED`, which the
/// ethtool and netdev families require.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// A `u32` (native endian).
    U32(u16, u32),
    /// A `u64` (native endian).
    U64(u16, u64),
    /// A `u8`.
    U8(u16, u8),
    /// A NUL-terminated string.
    Str(u16, String),
    /// Raw bytes.
    Bytes(u16, Vec<u8>),
    /// A flag: present or absent, no payload.
    Flag(u16),
    /// Nested attributes.
    Nest(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::U32(..) => 4,
            Attr::U64(..) => 8,
            Attr::U8(..) => 1,
            Attr::Flag(_) => 0,
            Attr::Str(_, s) => s.len() + 1,
            Attr::Bytes(_, b) => b.len(),
            Attr::Nest(_, v) => v.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::U32(k, _)
            | Attr::U64(k, _)
            | Attr::U8(k, _)
            | Attr::Str(k, _)
            | Attr::Bytes(k, _)
            | Attr::Flag(k) => *k,
            Attr::Nest(k, _) => *k | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Attr::U32(_, v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Attr::U64(_, v) => buffer[..8].copy_from_slice(&v.to_ne_bytes()),
            Attr::U8(_, v) => buffer[0] = *v,
            Attr::Flag(_) => {}
            Attr::Str(_, s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            Attr::Bytes(_, b) => buffer[..b.len()].copy_from_slice(b),
            Attr::Nest(_, v) => v.as_slice().emit(buffer),
        }
    }
}

/// Serialises attributes into the bytes of a message payload (each padded
/// to 4 bytes).
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

    /// Splits `buf` into attributes, stopping quietly at a malformed tail
    /// (for optional extras such as extended-ack attributes).
    pub fn parse_lenient(mut buf: &'a [u8]) -> Self {
        let mut list = Vec::new();
        while buf.len() >= 4 {
            let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
            let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
            if len < 4 || len > buf.len() {
                break;
            }
            list.push((kind, &buf[4..len]));
            buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
        }
        Attrs { list }
    }

    /// Every attribute, in order: (type, value bytes).
    pub fn iter(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        self.list.iter().copied()
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

    /// A `u16` attribute.
    pub fn u16(&self, kind: u16) -> Option<u16> {
        self.get(kind)
            .and_then(|v| v.get(..2))
            .and_then(|b| b.try_into().ok())
            .map(u16::from_ne_bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip_with_nesting() {
        let bytes = encode(&[
            Attr::Nest(1, vec![Attr::U32(1, 7), Attr::Str(2, "veth0".into())]),
            Attr::U32(6, 256),
            Attr::U8(11, 1),
            Attr::U64(12, 1 << 40),
            Attr::Bytes(13, vec![1, 2, 3]),
        ]);
        assert_eq!(bytes.len() % 4, 0);
        let a = Attrs::parse(&bytes).unwrap();
        let h = a.nested(1).unwrap();
        assert_eq!(h.u32(1), Some(7));
        assert_eq!(h.str(2).as_deref(), Some("veth0"));
        assert_eq!(a.u32(6), Some(256));
        assert_eq!(a.u16(6), Some(256));
        assert_eq!(a.u8(11), Some(1));
        assert_eq!(a.u64(12), Some(1 << 40));
        assert_eq!(a.get(13), Some(&[1u8, 2, 3][..]));
        assert!(a.u32(9).is_none());
        assert_eq!(a.iter().count(), 5);
        // The nested flag is set on the wire and masked off when reading.
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        assert_eq!(kind, 1 | NLA_F_NESTED);
    }

    #[test]
    fn uint_accepts_both_widths() {
        let bytes = encode(&[Attr::U32(8, 5), Attr::U64(9, 1 << 40), Attr::U8(10, 1)]);
        let a = Attrs::parse(&bytes).unwrap();
        assert_eq!(a.uint(8), Some(5));
        assert_eq!(a.uint(9), Some(1 << 40));
        assert_eq!(a.uint(10), None);
    }

    #[test]
    fn truncated_attributes_are_an_error_not_a_panic() {
        let bytes = encode(&[Attr::U32(1, 1)]);
        assert!(Attrs::parse(&bytes[..6]).is_err());
        // A header claiming more than the buffer has.
        let bad = [200u8, 0, 1, 0, 0, 0, 0, 0];
        assert!(Attrs::parse(&bad).is_err());
        // The lenient reader keeps what came before the bad tail.
        let mut b = encode(&[Attr::U32(3, 9)]);
        b.extend_from_slice(&bad);
        let a = Attrs::parse_lenient(&b);
        assert_eq!((a.u32(3), a.iter().count()), (Some(9), 1));
    }
}
