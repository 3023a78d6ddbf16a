//! The netlink transport the lab's two clients share — rtnetlink
//! ([`crate::netlink`]) and the `netdev` generic-netlink family
//! ([`crate::genl`]): one request, its replies read until the ACK or
//! `NLMSG_DONE`, `NLMSG_ERROR` turned into [`LabError::Netlink`] with the
//! kernel's extended-ack message, an interrupted dump sent again.
//!
//! A netlink socket talks to the network namespace of the thread that
//! created it, for its whole life.

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr};

use crate::error::{LabError, Result};
use crate::netlink::ext_ack_message;

/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// Receive buffer: the kernel sends at most 32 KiB per dump datagram.
const RECV_BUF: usize = 64 * 1024;
/// Dumps interrupted by a concurrent change are repeated this many times.
const DUMP_ATTEMPTS: usize = 5;

/// A netlink socket of one protocol, connected to the kernel, with
/// extended ACKs on.
pub(crate) struct NlSocket {
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

impl NlSocket {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol)` in the calling
    /// thread's network namespace.
    pub fn new(protocol: isize, op: &str) -> Result<Self> {
        let mut sock = Socket::new(protocol).map_err(|e| LabError::sys(op, e))?;
        sock.bind_auto().map_err(|e| LabError::sys(op, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| LabError::sys(op, e))?;
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
    /// whole message: header, then payload) and gives every reply to it
    /// other than the ACK and `NLMSG_DONE` to `parse` (the whole message,
    /// header included), keeping what `parse` returns. Non-dump requests
    /// get `NLM_F_ACK`; a dump that the kernel marks interrupted
    /// (`NLM_F_DUMP_INTR`: the table changed under it) is sent again.
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
        Err(LabError::Protocol {
            op: op.to_string(),
            detail: format!("dump interrupted {DUMP_ATTEMPTS} times in a row (NLM_F_DUMP_INTR)"),
        })
    }

    /// One send and its replies; `None` when the dump was interrupted.
    fn exchange<T>(
        &mut self,
        op: &str,
        msg: &[u8],
        parse: &mut impl FnMut(&[u8]) -> Result<Option<T>>,
    ) -> Result<Option<Vec<T>>> {
        let seq = self.seq;
        loop {
            match self.sock.send(msg, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LabError::sys(format!("{op}: sending netlink request"), e)),
            }
        }
        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            let n = loop {
                match self.sock.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(LabError::sys(format!("{op}: reading netlink reply"), e)),
                }
            };
            if n > self.buf.len() {
                return Err(LabError::Protocol {
                    op: op.to_string(),
                    detail: format!("reply of {n} bytes truncated to {}", self.buf.len()),
                });
            }
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let b = &self.buf[off..n];
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(LabError::Protocol {
                        op: op.to_string(),
                        detail: format!("bad message length {len} at offset {off} of {n}"),
                    });
                }
                let raw = &b[..len];
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let mflags = u16::from_ne_bytes([b[6], b[7]]);
                let mseq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                let body = &raw[NLMSG_HDRLEN..];
                off += (len + 3) & !3;
                if mseq != seq {
                    continue; // a late reply to an earlier request
                }
                if mflags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                let code = || {
                    body.get(..4)
                        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                };
                match kind {
                    NLMSG_DONE => {
                        let code = code().unwrap_or(0);
                        if code < 0 {
                            return Err(LabError::Netlink {
                                op: op.to_string(),
                                source: io::Error::from_raw_os_error(-code),
                                ext_ack: None,
                            });
                        }
                        return Ok((!interrupted).then_some(replies));
                    }
                    NLMSG_ERROR => {
                        let Some(code) = code() else {
                            return Err(LabError::Protocol {
                                op: op.to_string(),
                                detail: "short NLMSG_ERROR".into(),
                            });
                        };
                        if code == 0 {
                            return Ok(Some(replies));
                        }
                        return Err(LabError::Netlink {
                            op: op.to_string(),
                            source: io::Error::from_raw_os_error(-code),
                            ext_ack: ext_ack_message(mflags, &body[4..]),
                        });
                    }
                    _ => replies.extend(parse(raw)?),
                }
            }
        }
    }
}
