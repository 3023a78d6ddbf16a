//! Helpers shared by the lab integration tests: an AF_PACKET raw socket on
//! one interface (an independent sender and receiver to check pktio
//! against), and the known frames the tests exchange.
#![allow(dead_code, unsafe_code)]

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pktio::wire::UdpFrame;
use pktio_lab::Lab;

/// A raw `AF_PACKET` socket bound to one interface (all protocols).
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSocket {
    /// Opens the socket; call inside the interface's namespace.
    pub fn open(ifindex: u32) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: plain socket(2) call; the fd is checked and owned below.
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        assert!(
            fd >= 0,
            "socket(AF_PACKET): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; zero is a valid start.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the length passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0, "bind(AF_PACKET): {}", std::io::Error::last_os_error());
        // Room for a test's whole burst, both ways (the socket sees its own
        // frames go out too): the default 208 KiB holds ~250 small frames,
        // and a backend that forwards in blocks (V3) sends them back at once.
        // SO_RCVBUFFORCE: the tests run as root; rmem_max does not apply.
        let bytes: libc::c_int = 16 << 20;
        // SAFETY: a valid socket fd and a pointer to an int of the size passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
        RawSocket {
            fd,
            ifindex: ifindex as i32,
        }
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live buffer of the length passed.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send(AF_PACKET): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Receives incoming frames until `want` match `keep` or `timeout` passes.
    pub fn recv_matching(
        &self,
        want: usize,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let end = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < want && Instant::now() < end {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            // SAFETY: sockaddr_ll is plain data.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are live and sized as passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = &buf[..n as usize];
            if keep(f) {
                got.push(f.to_vec());
            }
        }
        got
    }

    /// Interface index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }
}

/// UDP port the tests' frames are sent to (marks them as ours).
pub const TEST_PORT: u16 = 4242;

/// `n` distinct frames from gen to rx, lengths cycling over 60..=1514, each
/// carrying its index and a pattern derived from it.
pub fn test_frames(lab: &Lab, n: usize, to_port: u16) -> Vec<Vec<u8>> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 9,
        dst_port: to_port,
    };
    (0..n)
        .map(|i| {
            let len = 60 + (i * 97) % (1514 - 60 + 1);
            let mut payload = (i as u32).to_be_bytes().to_vec();
            payload.extend((0..(len - 42 - 4)).map(|k| (i.wrapping_mul(31) + k) as u8));
            let mut out = vec![0u8; len];
            spec.emit(&payload, len, &mut out).expect("frame fits");
            out
        })
        .collect()
}

/// Whether a frame is one of the tests' (UDP to `port`).
pub fn is_test_frame(f: &[u8], port: u16) -> bool {
    pktio::wire::parse_udp(f).is_some_and(|v| v.dst_port == port)
}

/// The index carried by a test frame.
pub fn frame_index(f: &[u8]) -> Option<u32> {
    let v = pktio::wire::parse_udp(f)?;
    Some(u32::from_be_bytes(v.payload.get(..4)?.try_into().ok()?))
}

/// The lab's addresses are in the benchmarking range (a sanity check every
/// test gets for free).
pub fn assert_lab_addresses(lab: &Lab) {
    for ip in [lab.gen().addr().ip(), lab.rx().addr().ip()] {
        assert!(
            ip.octets()[0] == 198 && (ip.octets()[1] & 0xfe) == 18,
            "{ip}"
        );
        let _: Ipv4Addr = ip;
    }
}

/// Builds an AF_XDP socket with `build`, again while its queue is still
/// held by a socket closed a moment ago (`bind` answers `EBUSY` until the
/// kernel's deferred release), for at most 5 s. Any other error fails.
pub fn once_the_queue_is_free<'u>(
    mut build: impl FnMut() -> Result<pktio::xdp::XskSocket<'u>, pktio::xdp::XskError>,
) -> pktio::xdp::XskSocket<'u> {
    let what = "the queue, released by the socket closed before";
    pktio_lab::wait::for_some(Duration::from_secs(5), what, || match build() {
        Ok(sock) => Some(sock),
        Err(pktio::xdp::XskError::Sys {
            op: "bind",
            ref source,
            ..
        }) if source.errno() == Some(libc::EBUSY) => None,
        Err(e) => panic!("socket: {e}"),
    })
}
