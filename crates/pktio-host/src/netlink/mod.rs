//! The one netlink client of pktio: a transport ([`NlSocket`]) and the
//! protocols over it.
//!
//! - [`NlSocket`]: one request, its replies read until the ACK or
//!   `NLMSG_DONE`; `NLMSG_ERROR` turned into [`HostError::Netlink`] with the
//!   kernel's extended-ack message; a dump the kernel marks interrupted
//!   (`NLM_F_DUMP_INTR`) sent again.
//! - [`attr`]: a netlink attribute writer ([`Attr`], [`encode`]) and reader
//!   ([`Attrs`]), pure and tested.
//! - [`route`]: rtnetlink (links, addresses, neighbours) with the messages
//!   of `netlink-packet-route`.
//! - [`genl`]: generic netlink: family lookup and raw-attribute requests;
//!   [`netdev`] and [`ethtool`] are two families over it.
//! - [`sock_diag`]: the AF_XDP sockets of the namespace (`xsk_diag`).
//!
//! A netlink socket talks to the network namespace of the thread that
//! created it, for its whole life.

pub mod attr;
pub mod ethtool;
pub mod genl;
pub mod netdev;
pub mod route;
pub mod sock_diag;

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr};

pub use self::attr::{encode, Attr, Attrs};
use crate::error::{HostError, Result};

pub use netlink_sys::protocols::{NETLINK_GENERIC, NETLINK_ROUTE, NETLINK_SOCK_DIAG};

/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// `NLM_F_CAPPED` (`<linux/netlink.h>`): the error payload holds only the
/// request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` (`<linux/netlink.h>`): extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG` (`<linux/netlink.h>`): the error message string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Receive buffer: the kernel sends at most 32 KiB per dump datagram.
const RECV_BUF: usize = 64 * 1024;
/// Dumps interrupted by a concurrent change are repeated this many times.
const DUMP_ATTEMPTS: usize = 5;

/// A netlink socket of one protocol, connected to the kernel, with
/// extended ACKs on.
pub struct NlSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for NlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish()
    }
}

/// Builds a whole netlink message: the 16-byte `nlmsghdr` (length, `kind`,
/// `flags`, `seq`, port 0), then `payload`.
pub fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    msg
}

impl NlSocket {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol)` in the calling
    /// thread's network namespace (`protocol`: [`NETLINK_ROUTE`],
    /// [`NETLINK_GENERIC`], [`NETLINK_SOCK_DIAG`]); `op` names the socket
    /// in errors.
    pub fn new(protocol: isize, op: &str) -> Result<Self> {
        let mut sock = Socket::new(protocol).map_err(|e| HostError::sys(op, e))?;
        sock.bind_auto().map_err(|e| HostError::sys(op, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| HostError::sys(op, e))?;
        // Both are optional comforts (error strings, short ACKs).
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(NlSocket {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends the message `build(header flags, sequence number)` makes (a
    /// whole message: header, then payload; see [`message`]) and gives
    /// every reply to it other than the ACK and `NLMSG_DONE` to `parse`
    /// (the whole message, header included), keeping what `parse` returns.
    /// Non-dump requests get `NLM_F_ACK`; a dump that the kernel marks
    /// interrupted (`NLM_F_DUMP_INTR`: the table changed under it) is sent
    /// again, at most 5 times.
    ///
    /// # Errors
    /// [`HostError::Netlink`] for the kernel's refusal,
    /// [`HostError::Sys`] for the socket's errors, [`HostError::Protocol`]
    /// for a reply that does not frame or parse.
    pub fn request<T>(
        &mut self,
        op: &str,
        flags: u16,
        build: impl Fn(u16, u32) -> Vec<u8>,
        mut parse: impl FnMut(&[u8]) -> Result<Option<T>>,
    ) -> Result<Vec<T>> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let nl_flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        for _attempt in 0..DUMP_ATTEMPTS {
            self.seq = self.seq.wrapping_add(1);
            let msg = build(nl_flags, self.seq);
            if let Some(v) = self.exchange(op, &msg, &mut parse)? {
                return Ok(v);
            }
        }
        Err(HostError::protocol(
            op,
            format!("dump interrupted {DUMP_ATTEMPTS} times in a row (NLM_F_DUMP_INTR)"),
        ))
    }

    fn send(&mut self, op: &str, msg: &[u8]) -> Result<()> {
        loop {
            match self.sock.send(msg, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HostError::sys(format!("{op}: sending netlink request"), e)),
            }
        }
    }

    fn recv(&mut self, op: &str) -> Result<usize> {
        let n = loop {
            match self.sock.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HostError::sys(format!("{op}: reading netlink reply"), e)),
            }
        };
        if n > self.buf.len() {
            return Err(HostError::protocol(
                op,
                format!("reply of {n} bytes truncated to {}", self.buf.len()),
            ));
        }
        Ok(n)
    }

    /// One send and its replies; `None` when the dump was interrupted.
    fn exchange<T>(
        &mut self,
        op: &str,
        msg: &[u8],
        parse: &mut impl FnMut(&[u8]) -> Result<Option<T>>,
    ) -> Result<Option<Vec<T>>> {
        self.send(op, msg)?;
        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            let n = self.recv(op)?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let frame = Frame::split(op, &self.buf[off..n], off, n)?;
                off += (frame.raw.len() + 3) & !3;
                if frame.seq != self.seq {
                    continue; // a late reply to an earlier request
                }
                interrupted |= frame.flags & NLM_F_DUMP_INTR != 0;
                match frame.end(op)? {
                    Some(()) if interrupted => return Ok(None),
                    Some(()) => return Ok(Some(replies)),
                    None => replies.extend(parse(frame.raw)?),
                }
            }
        }
    }
}

/// One netlink message of a datagram.
struct Frame<'a> {
    raw: &'a [u8],
    kind: u16,
    flags: u16,
    seq: u32,
}

impl<'a> Frame<'a> {
    /// The message at the start of `b` (offset `off` of an `n`-byte datagram).
    fn split(op: &str, b: &'a [u8], off: usize, n: usize) -> Result<Self> {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(HostError::protocol(
                op,
                format!("bad message length {len} at offset {off} of {n}"),
            ));
        }
        Ok(Frame {
            raw: &b[..len],
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        })
    }

    /// `Some(())` for the end of the exchange (a zero `NLMSG_ERROR` or
    /// `NLMSG_DONE`), `None` for a reply, an error for a refusal.
    fn end(&self, op: &str) -> Result<Option<()>> {
        let body = &self.raw[NLMSG_HDRLEN..];
        let code = body
            .get(..4)
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
        let refused = |code: i32, ext_ack| HostError::Netlink {
            op: op.to_string(),
            source: io::Error::from_raw_os_error(-code),
            ext_ack,
        };
        match self.kind {
            NLMSG_DONE => match code.unwrap_or(0) {
                c if c < 0 => Err(refused(c, None)),
                _ => Ok(Some(())),
            },
            NLMSG_ERROR => match code {
                None => Err(HostError::protocol(op, "short NLMSG_ERROR")),
                Some(0) => Ok(Some(())),
                Some(c) => Err(refused(c, ext_ack_message(self.flags, &body[4..]))),
            },
            _ => Ok(None),
        }
    }
}

/// The kernel's extended-ACK message (`NLMSGERR_ATTR_MSG`) from the payload
/// of an `NLMSG_ERROR` (everything after the error code), if it has one.
pub fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        (len + 3) & !3
    };
    let tlvs = Attrs::parse_lenient(payload.get(skip..)?);
    tlvs.get(NLMSGERR_ATTR_MSG).map(|s| {
        let s = s.split(|b| *b == 0).next().unwrap_or(s);
        String::from_utf8_lossy(s).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_capped() {
        let mut p = vec![0u8; 16];
        p.extend(encode(&[Attr::Str(
            NLMSGERR_ATTR_MSG,
            "Unknown device type".into(),
        )]));
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &p), None);
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p[..10]),
            None
        );
    }

    fn frame(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        message(kind, flags, 7, body)
    }

    #[test]
    fn frames_end_on_ack_done_and_refusal() {
        let ack = frame(NLMSG_ERROR, 0, &0i32.to_ne_bytes());
        let f = Frame::split("op", &ack, 0, ack.len()).unwrap();
        assert_eq!((f.kind, f.seq), (NLMSG_ERROR, 7));
        assert_eq!(f.end("op").unwrap(), Some(()));
        let done = frame(NLMSG_DONE, 0, &0i32.to_ne_bytes());
        assert_eq!(
            Frame::split("op", &done, 0, done.len())
                .unwrap()
                .end("op")
                .unwrap(),
            Some(())
        );
        let reply = frame(16, 0, &[0; 16]);
        assert_eq!(
            Frame::split("op", &reply, 0, 32)
                .unwrap()
                .end("op")
                .unwrap(),
            None
        );
        let mut body = (-libc::EEXIST).to_ne_bytes().to_vec();
        body.extend(message(16, 0, 7, &[]));
        body.extend(encode(&[Attr::Str(NLMSGERR_ATTR_MSG, "taken".into())]));
        let nack = frame(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, &body);
        let e = Frame::split("adding", &nack, 0, nack.len())
            .unwrap()
            .end("adding")
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(e.ext_ack(), Some("taken"));
        let short = frame(NLMSG_ERROR, 0, &[]);
        assert!(matches!(
            Frame::split("op", &short, 0, 16).unwrap().end("op"),
            Err(HostError::Protocol { .. })
        ));
    }

    #[test]
    fn bad_lengths_are_protocol_errors() {
        let mut m = frame(16, 0, &[0; 4]);
        m[0..4].copy_from_slice(&200u32.to_ne_bytes());
        assert!(Frame::split("op", &m, 0, m.len()).is_err());
        m[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(Frame::split("op", &m, 0, m.len()).is_err());
    }
}
