//! AF_XDP socket ABI: socket, UMEM registration, ring sizes and mappings,
//! bind, statistics, options, wakeups, busy-poll options; plus the
//! interface queries a socket needs (index, MTU; channel count and driver
//! name are in [`super::ethtool`]).
//!
//! Structs come from rustix (`rustix::net::xdp`), which smooths over the
//! pre-5.4 / pre-5.9 layouts of `xdp_mmap_offsets` and `xdp_statistics`.
//! Options rustix lacks (`SO_BUSY_POLL*`, `XDP_MAX_TX_SKB_BUDGET`) are raw
//! `setsockopt` calls below.
//! uapi: <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/if_xdp.h?h=v6.18>

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::xdp::{
    SocketAddrXdp, SocketAddrXdpFlags, SocketAddrXdpWithSharedUmem, XdpMmapOffsets,
    XdpOptionsFlags, XdpRingOffset, XdpStatistics, XdpUmemReg, XdpUmemRegFlags,
};
use rustix::net::{AddressFamily, SocketType};

use super::mmap::{Mmap, RingLayout};
use super::{cvt, rx};
use crate::error::SysError;

/// `XDP_MAX_TX_SKB_BUDGET` (if_xdp.h, kernel 6.17): descriptors one copy-mode
/// `sendto` may transmit. Missing from libc and rustix.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// `SO_PREFER_BUSY_POLL` (asm-generic/socket.h, kernel 5.11).
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
/// `SO_BUSY_POLL_BUDGET` (asm-generic/socket.h, kernel 5.11).
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// `socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)`.
pub(crate) fn socket() -> Result<OwnedFd, SysError> {
    rustix::net::socket(AddressFamily::XDP, SocketType::RAW, None).map_err(rx("socket(AF_XDP)"))
}

/// `XDP_UMEM_TX_SW_CSUM` (if_xdp.h, kernel 6.8): copy-mode TX checksum
/// requests are computed in software. Missing from rustix.
pub(crate) const XDP_UMEM_TX_SW_CSUM: u32 = 1 << 1;
/// `XDP_UMEM_TX_METADATA_LEN` (if_xdp.h, kernel 6.11): `tx_metadata_len` is
/// honoured (6.8–6.10 honoured it without the flag). Missing from rustix.
pub(crate) const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// `setsockopt(fd, SOL_XDP, XDP_UMEM_REG, …)` of all of `area`, with TX
/// metadata: `tx_metadata_len` bytes before each TX descriptor's address
/// hold a `struct xsk_tx_metadata`, and `extra_flags` adds
/// [`XDP_UMEM_TX_METADATA_LEN`] / [`XDP_UMEM_TX_SW_CSUM`] (kernel 6.8).
///
/// # Safety
/// The registration lets the kernel read and write `area` behind Rust's
/// back for as long as the socket `fd` lives. The caller keeps `area`
/// mapped until `fd` is closed, and reads or writes a chunk of it only
/// while the kernel cannot (the UMEM's frame ownership, `xdp::umem`).
pub(crate) unsafe fn umem_reg_ext(
    fd: BorrowedFd<'_>,
    area: &Mmap,
    chunk_size: u32,
    headroom: u32,
    unaligned: bool,
    tx_metadata_len: u32,
    extra_flags: u32,
) -> Result<(), SysError> {
    let mut flags = if unaligned {
        XdpUmemRegFlags::XDP_UMEM_UNALIGNED_CHUNK_FLAG
    } else {
        XdpUmemRegFlags::empty()
    };
    flags |= XdpUmemRegFlags::from_bits_retain(extra_flags);
    let reg = XdpUmemReg {
        addr: area.as_ptr() as u64,
        len: area.len() as u64,
        chunk_size,
        headroom,
        flags,
        tx_metadata_len,
    };
    rustix::net::sockopt::set_xdp_umem_reg(fd, reg).map_err(rx("setsockopt(XDP_UMEM_REG)"))
}

/// Which of the four AF_XDP rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingKind {
    Fill,
    Completion,
    Rx,
    Tx,
}

/// `setsockopt(fd, SOL_XDP, XDP_{UMEM_FILL,UMEM_COMPLETION,RX,TX}_RING, n)`.
pub(crate) fn set_ring_size(fd: BorrowedFd<'_>, kind: RingKind, n: u32) -> Result<(), SysError> {
    use rustix::net::sockopt as so;
    match kind {
        RingKind::Fill => {
            so::set_xdp_umem_fill_ring_size(fd, n).map_err(rx("setsockopt(XDP_UMEM_FILL_RING)"))
        }
        RingKind::Completion => so::set_xdp_umem_completion_ring_size(fd, n)
            .map_err(rx("setsockopt(XDP_UMEM_COMPLETION_RING)")),
        RingKind::Rx => so::set_xdp_rx_ring_size(fd, n).map_err(rx("setsockopt(XDP_RX_RING)")),
        RingKind::Tx => so::set_xdp_tx_ring_size(fd, n).map_err(rx("setsockopt(XDP_TX_RING)")),
    }
}

impl From<XdpRingOffset> for RingLayout {
    fn from(o: XdpRingOffset) -> Self {
        RingLayout {
            producer: o.producer as usize,
            consumer: o.consumer as usize,
            flags: o.flags.map(|f| f as usize),
            desc: o.desc as usize,
        }
    }
}

/// `getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS)` then
/// `mmap(fd, XDP_{UMEM_PGOFF_FILL,UMEM_PGOFF_COMPLETION,PGOFF_RX,PGOFF_TX}_RING)`
/// for a ring of `entries` elements of `elem_size` bytes.
pub(crate) fn map_ring(
    fd: BorrowedFd<'_>,
    kind: RingKind,
    entries: u32,
    elem_size: usize,
) -> Result<(Mmap, RingLayout), SysError> {
    use rustix::net::xdp as x;
    let offsets: XdpMmapOffsets =
        rustix::net::sockopt::xdp_mmap_offsets(fd).map_err(rx("getsockopt(XDP_MMAP_OFFSETS)"))?;
    let (off, pgoff, call) = match kind {
        RingKind::Fill => (offsets.fr, x::XDP_UMEM_PGOFF_FILL_RING, "mmap(fill ring)"),
        RingKind::Completion => (
            offsets.cr,
            x::XDP_UMEM_PGOFF_COMPLETION_RING,
            "mmap(completion ring)",
        ),
        RingKind::Rx => (offsets.rx, x::XDP_PGOFF_RX_RING, "mmap(rx ring)"),
        RingKind::Tx => (offsets.tx, x::XDP_PGOFF_TX_RING, "mmap(tx ring)"),
    };
    let layout = RingLayout::from(off);
    let len = layout.desc + entries as usize * elem_size;
    let map = Mmap::shared(call, fd, len, pgoff)?;
    Ok((map, layout))
}

/// `bind(fd, sockaddr_xdp { flags, ifindex, queue_id, shared_umem_fd })`.
pub(crate) fn bind(
    fd: BorrowedFd<'_>,
    flags: SocketAddrXdpFlags,
    ifindex: u32,
    queue: u32,
    shared_umem: Option<BorrowedFd<'_>>,
) -> Result<(), SysError> {
    let addr = SocketAddrXdp::new(flags, ifindex, queue);
    match shared_umem {
        None => rustix::net::bind(fd, &addr),
        Some(shared_umem_fd) => rustix::net::bind(
            fd,
            &SocketAddrXdpWithSharedUmem {
                addr,
                shared_umem_fd,
            },
        ),
    }
    .map_err(rx("bind(AF_XDP)"))
}

/// `getsockopt(fd, SOL_XDP, XDP_STATISTICS)`.
pub(crate) fn statistics(fd: BorrowedFd<'_>) -> Result<XdpStatistics, SysError> {
    rustix::net::sockopt::xdp_statistics(fd).map_err(rx("getsockopt(XDP_STATISTICS)"))
}

/// `getsockopt(fd, SOL_XDP, XDP_OPTIONS)`: whether the bind got zero-copy.
pub(crate) fn is_zerocopy(fd: BorrowedFd<'_>) -> Result<bool, SysError> {
    rustix::net::sockopt::xdp_options(fd)
        .map(|o| o.contains(XdpOptionsFlags::XDP_OPTIONS_ZEROCOPY))
        .map_err(rx("getsockopt(XDP_OPTIONS)"))
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: asks the kernel to process
/// the TX ring. Returns the errno on failure so the caller can count it.
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> Result<(), i32> {
    rustix::net::send(fd, &[], rustix::net::SendFlags::DONTWAIT)
        .map(|_| ())
        .map_err(|e| e.raw_os_error())
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: asks the kernel to
/// process the fill ring / drive NAPI (busy poll). Errno on failure.
pub(crate) fn kick_rx(fd: BorrowedFd<'_>) -> Result<(), i32> {
    let mut empty: [u8; 0] = [];
    rustix::net::recv(fd, &mut empty[..], rustix::net::RecvFlags::DONTWAIT)
        .map(|_| ())
        .map_err(|e| e.raw_os_error())
}

/// `poll([{fd, POLLIN}], 1, timeout_ms)`: true when the socket is readable.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout_ms: i32) -> Result<bool, SysError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(SysError {
            call: "poll(AF_XDP)",
            source: e,
        });
    }
    Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
}

fn setsockopt_int(
    call: &'static str,
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), SysError> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(call, ret).map(|_| ())
}

/// `setsockopt(SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)`, `SO_BUSY_POLL, usecs`,
/// `SO_BUSY_POLL_BUDGET, budget` (kernel 5.11).
pub(crate) fn set_busy_poll(fd: BorrowedFd<'_>, usecs: u32, budget: u32) -> Result<(), SysError> {
    setsockopt_int(
        "setsockopt(SO_PREFER_BUSY_POLL)",
        fd,
        libc::SOL_SOCKET,
        SO_PREFER_BUSY_POLL,
        1,
    )?;
    setsockopt_int(
        "setsockopt(SO_BUSY_POLL)",
        fd,
        libc::SOL_SOCKET,
        libc::SO_BUSY_POLL,
        usecs as libc::c_int,
    )?;
    setsockopt_int(
        "setsockopt(SO_BUSY_POLL_BUDGET)",
        fd,
        libc::SOL_SOCKET,
        SO_BUSY_POLL_BUDGET,
        budget as libc::c_int,
    )
}

/// `setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, n)` (kernel 6.17).
pub(crate) fn set_tx_skb_budget(fd: BorrowedFd<'_>, n: u32) -> Result<(), SysError> {
    setsockopt_int(
        "setsockopt(XDP_MAX_TX_SKB_BUDGET)",
        fd,
        libc::SOL_XDP,
        XDP_MAX_TX_SKB_BUDGET,
        n as libc::c_int,
    )
}

/// `if_nametoindex(name)` in the calling thread's network namespace.
pub(crate) fn if_nametoindex(name: &str) -> Result<u32, SysError> {
    let c = CString::new(name).map_err(|_| SysError::from_errno("if_nametoindex", libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = std::io::Error::last_os_error();
        // glibc reports a missing device as ENODEV (sometimes ENXIO).
        let errno = e.raw_os_error().unwrap_or(libc::ENODEV);
        return Err(SysError::from_errno("if_nametoindex", errno));
    }
    Ok(idx)
}

/// `if_indextoname(index)` in the calling thread's network namespace.
pub(crate) fn if_indextoname(index: u32) -> Result<String, SysError> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes as if_indextoname(3) requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(SysError::last("if_indextoname"));
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// `ioctl(SIOCGIFMTU)`: the interface's MTU, in the calling thread's
/// network namespace.
pub(crate) fn mtu(ifname: &str) -> Result<u32, SysError> {
    const CALL: &str = "ioctl(SIOCGIFMTU)";
    let sock =
        rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(rx(CALL))?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= ifr.ifr_name.len() {
        return Err(SysError::from_errno(CALL, libc::ENODEV));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the name from and writes the MTU into `ifr`,
    // a live, exclusively borrowed ifreq.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut ifr) };
    cvt(CALL, ret)?;
    // SAFETY: after a successful SIOCGIFMTU the union holds `ifru_mtu`.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    Ok(mtu.max(0) as u32)
}

/// `MAX_SKB_FRAGS` as this kernel enforces it: `/proc/sys/net/core/max_skb_frags`
/// (a runtime limit no larger than the compile-time one), 17 when unreadable.
pub(crate) fn max_skb_frags() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/max_skb_frags")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(17)
}
