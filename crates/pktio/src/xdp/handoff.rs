//! Handing AF_XDP to an unprivileged worker: file descriptors over a Unix
//! socket (`SCM_RIGHTS`).
//!
//! Creating an AF_XDP socket needs `CAP_NET_RAW`, and loading and attaching
//! the steering program needs `CAP_BPF` and `CAP_NET_ADMIN`. Nothing after
//! that does: registering a UMEM on a socket, mapping its rings, binding it
//! and putting it into a pinned XSKMAP are checks on the socket and the
//! pin's file permissions (the UMEM is charged to the worker's
//! `RLIMIT_MEMLOCK`). So a small privileged helper can do the privileged
//! part and hand the rest to a worker that holds no capability:
//!
//! | helper (root, or `CAP_NET_RAW`, `CAP_BPF`, `CAP_NET_ADMIN`) | worker (no capability) |
//! |---|---|
//! | [`XskProgram::attach`](super::XskProgram::attach); pin its map ([`XskProgram::pin_map`](super::XskProgram::pin_map)) and `chown` the pin to the worker | |
//! | `socket(AF_XDP)` per queue ([`new_xdp_socket`]) | |
//! | [`send_fds`] over a [`UnixStream`] | [`recv_xdp_sockets`] |
//! | | [`Umem::with_socket`](super::Umem::with_socket) on the first socket |
//! | | [`XskMap::from_pinned`](crate::bpf::XskMap::from_pinned) |
//! | | [`XskSocket::builder`](super::XskSocket::builder) with [`AttachMode::None`](super::AttachMode::None), [`xsk_map`](super::XskSocketBuilder::xsk_map), and for later queues [`socket`](super::XskSocketBuilder::socket) |
//!
//! This is libxdp's `xsk_umem__create_with_fd` model. The sockets belong to
//! the network namespace of the helper thread that created them; the worker
//! names the interface in its own namespace when it binds, so both must see
//! the same one (run the worker in the helper's namespace).
//!
//! `crates/pktio/examples/xsk_handoff.rs` runs both sides.
//!
//! Everything received is checked: the number of descriptors, that the
//! control message was not truncated (`MSG_CTRUNC`: the kernel dropped
//! descriptors that did not fit), and, for [`recv_xdp_sockets`], that each
//! descriptor is an AF_XDP socket. Descriptors that fail a check are closed.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use super::XskError;

/// The most descriptors one message may carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// A failed hand-off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// The Unix socket call failed.
    #[error("{op} on the hand-off socket failed: {source}")]
    Io {
        /// `sendmsg` or `recvmsg`.
        op: &'static str,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// More than [`MAX_FDS`] descriptors, or none, in one message.
    #[error("a hand-off message carries 1 to {MAX_FDS} descriptors; {0} given")]
    BadCount(usize),
    /// The peer closed the connection before sending anything.
    #[error("the helper closed the hand-off socket without sending descriptors")]
    Closed,
    /// The message carried more descriptors (or data) than the receiver
    /// made room for; the kernel discarded the excess (`MSG_CTRUNC` or
    /// `MSG_TRUNC`), so the hand-off is refused and what arrived is closed.
    #[error(
        "the hand-off message was truncated ({what}): the sender sent more than the {room} \
         the receiver expected; helper and worker disagree about the protocol"
    )]
    Truncated {
        /// Which part: "descriptors" or "data".
        what: &'static str,
        /// What the receiver made room for.
        room: usize,
    },
    /// A different number of descriptors than expected arrived.
    #[error("expected {expected} descriptor(s) from the helper, received {got}")]
    Count {
        /// What the receiver expected.
        expected: usize,
        /// What arrived (all closed).
        got: usize,
    },
    /// A descriptor is not an AF_XDP socket (all received ones were closed).
    #[error(
        "descriptor {index} of the hand-off is not an AF_XDP socket ({what}): the helper must \
         send sockets made with socket(AF_XDP, SOCK_RAW, 0)"
    )]
    NotXdpSocket {
        /// Its position in the message.
        index: usize,
        /// What it is instead.
        what: String,
    },
}

impl From<HandoffError> for XskError {
    fn from(e: HandoffError) -> XskError {
        XskError::Handoff(e)
    }
}

/// Sends `data` (at least one byte: a message without data is not
/// delivered on a stream socket) and the descriptors `fds` in one
/// `sendmsg` with an `SCM_RIGHTS` control message. The receiver gets its own
/// descriptors for the same open files; the sender keeps its own (close
/// them when the receiver has confirmed, or at once).
///
/// # Errors
/// [`HandoffError::BadCount`] for 0 or more than [`MAX_FDS`] descriptors or
/// empty `data`; [`HandoffError::Io`] when `sendmsg` fails.
pub fn send_fds(
    stream: &UnixStream,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), HandoffError> {
    if fds.is_empty() || fds.len() > MAX_FDS || data.is_empty() {
        return Err(HandoffError::BadCount(fds.len()));
    }
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(HandoffError::BadCount(fds.len()));
    }
    let mut sent = 0;
    while sent < data.len() {
        let iov = [IoSlice::new(&data[sent..])];
        // The descriptors travel with the first byte; later writes are plain.
        let n = if sent == 0 {
            sendmsg(stream.as_fd(), &iov, &mut control, SendFlags::NOSIGNAL)
        } else {
            sendmsg(
                stream.as_fd(),
                &iov,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            )
        };
        match n {
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(HandoffError::Io {
                    op: "sendmsg",
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

/// Receives one message of at most `buf.len()` bytes with at most
/// `max_fds` descriptors (`recvmsg` with `MSG_CMSG_CLOEXEC`). Returns the
/// bytes received and the descriptors, owned (closed when dropped).
///
/// # Errors
/// [`HandoffError::Truncated`] when the message carried more descriptors
/// than `max_fds` (the kernel discarded the rest) or more data than `buf`
/// holds; [`HandoffError::Closed`] at end of stream; [`HandoffError::Io`];
/// [`HandoffError::BadCount`] for `max_fds` 0 or over [`MAX_FDS`].
/// Whatever arrived is closed on error.
pub fn recv_fds(
    stream: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
) -> Result<(usize, Vec<OwnedFd>), HandoffError> {
    if max_fds == 0 || max_fds > MAX_FDS {
        return Err(HandoffError::BadCount(max_fds));
    }
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(max_fds))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg(
            stream.as_fd(),
            &mut iov,
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(HandoffError::Io {
                    op: "recvmsg",
                    source: e.into(),
                })
            }
        }
    };
    // Take ownership of every descriptor first, so that each is closed on
    // any error below.
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    // The control buffer is rounded up to the platform's alignment, so a
    // few more descriptors than asked for may fit: refuse those too.
    if msg.flags.contains(ReturnFlags::CTRUNC) || fds.len() > max_fds {
        return Err(HandoffError::Truncated {
            what: "descriptors",
            room: max_fds,
        });
    }
    if msg.flags.contains(ReturnFlags::TRUNC) {
        return Err(HandoffError::Truncated {
            what: "data",
            room: buf.len(),
        });
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Err(HandoffError::Closed);
    }
    Ok((msg.bytes, fds))
}

/// Receives exactly `count` AF_XDP sockets (and up to `buf.len()` bytes of
/// data, whose length is returned): [`recv_fds`], then a check of the count
/// and of each descriptor's socket domain (`getsockopt(SO_DOMAIN)` is
/// `AF_XDP`).
///
/// # Errors
/// As [`recv_fds`]; [`HandoffError::Count`] for another number of
/// descriptors; [`HandoffError::NotXdpSocket`] for a descriptor that is not
/// an AF_XDP socket. Every received descriptor is closed on error.
pub fn recv_xdp_sockets(
    stream: &UnixStream,
    buf: &mut [u8],
    count: usize,
) -> Result<(usize, Vec<OwnedFd>), HandoffError> {
    let (n, fds) = recv_fds(stream, buf, count)?;
    if fds.len() != count {
        return Err(HandoffError::Count {
            expected: count,
            got: fds.len(),
        });
    }
    for (index, fd) in fds.iter().enumerate() {
        check_xdp_socket(fd.as_fd()).map_err(|what| HandoffError::NotXdpSocket { index, what })?;
    }
    Ok((n, fds))
}

/// `Ok` if `fd` is an AF_XDP socket, else what it is.
pub(crate) fn check_xdp_socket(fd: BorrowedFd<'_>) -> Result<(), String> {
    match rustix::net::sockopt::socket_domain(fd) {
        Ok(AddressFamily::XDP) => Ok(()),
        Ok(other) => Err(format!("a socket of address family {}", other.as_raw())),
        Err(rustix::io::Errno::NOTSOCK) => Err("not a socket".into()),
        Err(e) => Err(format!("getsockopt(SO_DOMAIN) failed: {e}")),
    }
}

/// A new, unbound AF_XDP socket (`socket(AF_XDP, SOCK_RAW|SOCK_CLOEXEC, 0)`;
/// needs `CAP_NET_RAW`), for a helper to hand over. It belongs to the
/// calling thread's network namespace.
///
/// # Errors
/// [`XskError::Socket`] (`EPERM` without `CAP_NET_RAW`).
pub fn new_xdp_socket() -> Result<OwnedFd, XskError> {
    crate::sys::xdp::socket().map_err(XskError::Socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_not_an_xdp_socket_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_fds(&a, b"q0", &[file.as_fd()]).unwrap();
        let mut buf = [0u8; 16];
        match recv_xdp_sockets(&b, &mut buf, 1) {
            Err(HandoffError::NotXdpSocket { index: 0, what }) => {
                assert_eq!(what, "not a socket")
            }
            other => panic!("expected NotXdpSocket, got {other:?}"),
        }
        // A Unix socket is a socket, of the wrong family.
        send_fds(&a, b"q0", &[a.as_fd()]).unwrap();
        let e = recv_xdp_sockets(&b, &mut buf, 1).unwrap_err();
        assert!(
            matches!(&e, HandoffError::NotXdpSocket { what, .. } if what.contains("family 1")),
            "{e}"
        );
    }

    #[test]
    fn more_descriptors_than_expected_is_a_truncation() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = UnixStream::pair().unwrap();
        // 3 fit in the (aligned) room for 1: refused by count; 16 do not
        // fit: the kernel truncates (MSG_CTRUNC). Both are refused.
        for n in [3, 16] {
            let fds: Vec<_> = (0..n)
                .map(|i| if i % 2 == 0 { r.as_fd() } else { w.as_fd() })
                .collect();
            send_fds(&a, b"x", &fds).unwrap();
            let mut buf = [0u8; 4];
            match recv_fds(&b, &mut buf, 1) {
                Err(HandoffError::Truncated {
                    what: "descriptors",
                    room: 1,
                }) => {}
                other => panic!("{n} descriptors: expected Truncated, got {other:?}"),
            }
        }
    }

    #[test]
    fn fewer_descriptors_than_expected_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = UnixStream::pair().unwrap();
        send_fds(&a, b"x", &[r.as_fd()]).unwrap();
        let mut buf = [0u8; 4];
        match recv_xdp_sockets(&b, &mut buf, 2) {
            Err(HandoffError::Count {
                expected: 2,
                got: 1,
            }) => {}
            other => panic!("expected Count, got {other:?}"),
        }
    }

    #[test]
    fn data_and_descriptors_arrive_together() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, w) = UnixStream::pair().unwrap();
        send_fds(&a, b"hello", &[w.as_fd()]).unwrap();
        drop(w);
        let mut buf = [0u8; 16];
        let (n, mut fds) = recv_fds(&b, &mut buf, 4).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        // The received descriptor is the other end of `r`.
        use std::io::{Read, Write};
        let mut got = UnixStream::from(fds.remove(0));
        got.write_all(b"z").unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"z");
        // A closed peer is reported as such.
        drop(a);
        assert!(matches!(
            recv_fds(&b, &mut buf, 1),
            Err(HandoffError::Closed)
        ));
    }

    #[test]
    fn bad_counts_are_refused_before_any_call() {
        let (a, b) = UnixStream::pair().unwrap();
        assert!(matches!(
            send_fds(&a, b"x", &[]),
            Err(HandoffError::BadCount(0))
        ));
        let mut buf = [0u8; 1];
        assert!(matches!(
            recv_fds(&b, &mut buf, MAX_FDS + 1),
            Err(HandoffError::BadCount(_))
        ));
    }
}
