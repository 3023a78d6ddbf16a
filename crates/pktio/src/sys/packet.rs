//! AF_PACKET socket ABI: the socket, `bind(sockaddr_ll)`, the `SOL_PACKET`
//! options (version, rings, fanout, qdisc bypass, loss, ignore-outgoing,
//! statistics), the ring mapping, the TX kick, and `poll`.
//!
//! The structs are libc's (`tpacket2_hdr`, `tpacket3_hdr`,
//! `tpacket_block_desc`, `tpacket_req`, `tpacket_req3`, `tpacket_stats_v3`),
//! which mirror `include/uapi/linux/if_packet.h`; the sizes and offsets the
//! ring code relies on are asserted below against the header.
//! uapi: <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/if_packet.h?h=v6.18>
//! The ring protocol itself: `Documentation/networking/packet_mmap.rst` and
//! `net/packet/af_packet.c` of the same tag.

use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;
use super::mmap::Mmap;
use crate::error::SysError;

// ---- layout facts the ring code depends on (if_packet.h, v6.18) ----

/// `TPACKET_ALIGNMENT`: frames and the data in them are aligned to 16 bytes.
pub(crate) const TPACKET_ALIGNMENT: usize = libc::TPACKET_ALIGNMENT;

/// `TPACKET_ALIGN(x)`.
pub(crate) const fn tpacket_align(x: usize) -> usize {
    (x + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}

const _: () = {
    // struct tpacket2_hdr: 32 bytes.
    assert!(size_of::<libc::tpacket2_hdr>() == 32);
    assert!(offset_of!(libc::tpacket2_hdr, tp_status) == 0);
    assert!(offset_of!(libc::tpacket2_hdr, tp_len) == 4);
    assert!(offset_of!(libc::tpacket2_hdr, tp_snaplen) == 8);
    assert!(offset_of!(libc::tpacket2_hdr, tp_mac) == 12);
    assert!(offset_of!(libc::tpacket2_hdr, tp_net) == 14);
    assert!(offset_of!(libc::tpacket2_hdr, tp_sec) == 16);
    assert!(offset_of!(libc::tpacket2_hdr, tp_nsec) == 20);
    // struct tpacket3_hdr: 48 bytes.
    assert!(size_of::<libc::tpacket3_hdr>() == 48);
    assert!(offset_of!(libc::tpacket3_hdr, tp_next_offset) == 0);
    assert!(offset_of!(libc::tpacket3_hdr, tp_sec) == 4);
    assert!(offset_of!(libc::tpacket3_hdr, tp_nsec) == 8);
    assert!(offset_of!(libc::tpacket3_hdr, tp_snaplen) == 12);
    assert!(offset_of!(libc::tpacket3_hdr, tp_len) == 16);
    assert!(offset_of!(libc::tpacket3_hdr, tp_status) == 20);
    assert!(offset_of!(libc::tpacket3_hdr, tp_mac) == 24);
    assert!(offset_of!(libc::tpacket3_hdr, tp_net) == 26);
    // struct tpacket_block_desc: version, offset_to_priv, then
    // struct tpacket_hdr_v1 { block_status, num_pkts, offset_to_first_pkt,
    // blk_len, seq_num (u64), ts_first_pkt, ts_last_pkt }: 48 bytes in all.
    assert!(size_of::<libc::tpacket_block_desc>() == 48);
    assert!(offset_of!(libc::tpacket_block_desc, hdr) == 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, block_status) == 0);
    assert!(offset_of!(libc::tpacket_hdr_v1, num_pkts) == 4);
    assert!(offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt) == 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, blk_len) == 12);
    assert!(offset_of!(libc::tpacket_hdr_v1, seq_num) == 16);
    // struct tpacket_req (V1/V2) and tpacket_req3.
    assert!(size_of::<libc::tpacket_req>() == 16);
    assert!(size_of::<libc::tpacket_req3>() == 28);
    // struct tpacket_stats (V1/V2) and tpacket_stats_v3.
    assert!(size_of::<libc::tpacket_stats>() == 8);
    assert!(size_of::<libc::tpacket_stats_v3>() == 12);
    // TPACKET2_HDRLEN / TPACKET3_HDRLEN: header aligned, plus sockaddr_ll.
    assert!(libc::TPACKET2_HDRLEN == 32 + 20);
    assert!(libc::TPACKET3_HDRLEN == 48 + 20);
};

/// `sizeof(struct sockaddr_ll)`: the kernel's header lengths
/// (`TPACKET2_HDRLEN`…) include one after the aligned frame header.
pub(crate) const SOCKADDR_LL_LEN: usize = size_of::<libc::sockaddr_ll>();
const _: () = assert!(SOCKADDR_LL_LEN == 20);

/// Byte offset of `block_status` in a V3 block (`tpacket_block_desc.hdr.bh1`).
pub(crate) const BLOCK_STATUS_OFFSET: usize = 8;

/// `TPACKET_V2` / `TPACKET_V3` for `PACKET_VERSION` (`enum tpacket_versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V3,
}

impl Version {
    fn raw(self) -> libc::c_int {
        match self {
            Version::V2 => libc::tpacket_versions::TPACKET_V2 as libc::c_int,
            Version::V3 => libc::tpacket_versions::TPACKET_V3 as libc::c_int,
        }
    }
}

/// `ETH_P_ALL` in network byte order, as `socket(2)` and `sockaddr_ll` want it.
pub(crate) fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// `socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)`: protocol 0, so that no
/// packet is queued to it before its rings exist and it is bound.
pub(crate) fn socket() -> Result<OwnedFd, SysError> {
    // SAFETY: plain socket(2); the result is checked and owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    let fd = cvt("socket(AF_PACKET)", fd)?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(fd, sockaddr_ll { sll_family: AF_PACKET, sll_protocol, sll_ifindex })`.
/// `protocol_be` 0 binds to the device without receiving anything (a
/// TX-only socket); `ETH_P_ALL` receives every protocol.
pub(crate) fn bind(fd: BorrowedFd<'_>, ifindex: u32, protocol_be: u16) -> Result<(), SysError> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            SOCKADDR_LL_LEN as libc::socklen_t,
        )
    };
    cvt("bind(AF_PACKET)", ret).map(|_| ())
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
fn set_int(
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
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(call, ret).map(|_| ())
}

/// `setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2 | TPACKET_V3)`
/// (V2: kernel 2.6.27; V3: 3.2). Must precede the rings.
pub(crate) fn set_version(fd: BorrowedFd<'_>, v: Version) -> Result<(), SysError> {
    set_int(
        "setsockopt(PACKET_VERSION)",
        fd,
        libc::SOL_PACKET,
        libc::PACKET_VERSION,
        v.raw(),
    )
}

/// `getsockopt(SOL_PACKET, PACKET_HDRLEN)` with the version as input: the
/// size of the kernel's frame header struct for it (`tpacket2_hdr` 32,
/// `tpacket3_hdr` 48).
pub(crate) fn hdrlen(fd: BorrowedFd<'_>, v: Version) -> Result<usize, SysError> {
    let mut val: libc::c_int = v.raw();
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `val`/`len` are live and sized as passed; the kernel reads the
    // version from `val` and writes the header length back into it.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_HDRLEN,
            (&mut val as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    cvt("getsockopt(PACKET_HDRLEN)", ret)?;
    Ok(val as usize)
}

/// Geometry of one ring, as `tpacket_req3` holds it (V2 uses the first four
/// fields only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RingReq {
    pub(crate) block_size: u32,
    pub(crate) block_nr: u32,
    pub(crate) frame_size: u32,
    pub(crate) frame_nr: u32,
    /// V3 RX only: block retire timeout in ms (0 = the kernel derives one
    /// from the link speed).
    pub(crate) retire_blk_tov: u32,
}

impl RingReq {
    /// Bytes of the ring in the mapping (`block_size * block_nr`).
    pub(crate) fn bytes(&self) -> usize {
        self.block_size as usize * self.block_nr as usize
    }
}

/// `setsockopt(SOL_PACKET, PACKET_RX_RING | PACKET_TX_RING, tpacket_req | tpacket_req3)`.
/// `v` selects the struct: the kernel reads `tpacket_req` for V2 and
/// `tpacket_req3` for V3 (`packet_setsockopt`).
pub(crate) fn set_ring(
    fd: BorrowedFd<'_>,
    v: Version,
    tx: bool,
    req: &RingReq,
) -> Result<(), SysError> {
    let (name, call) = if tx {
        (libc::PACKET_TX_RING, "setsockopt(PACKET_TX_RING)")
    } else {
        (libc::PACKET_RX_RING, "setsockopt(PACKET_RX_RING)")
    };
    let ret = match v {
        Version::V2 => {
            let r = libc::tpacket_req {
                tp_block_size: req.block_size,
                tp_block_nr: req.block_nr,
                tp_frame_size: req.frame_size,
                tp_frame_nr: req.frame_nr,
            };
            // SAFETY: `r` is a live tpacket_req and the length passed is its size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    name,
                    (&r as *const libc::tpacket_req).cast(),
                    size_of::<libc::tpacket_req>() as libc::socklen_t,
                )
            }
        }
        Version::V3 => {
            let r = libc::tpacket_req3 {
                tp_block_size: req.block_size,
                tp_block_nr: req.block_nr,
                tp_frame_size: req.frame_size,
                tp_frame_nr: req.frame_nr,
                // The TX ring refuses a timeout, private area or feature word.
                tp_retire_blk_tov: if tx { 0 } else { req.retire_blk_tov },
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            // SAFETY: `r` is a live tpacket_req3 and the length passed is its size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    name,
                    (&r as *const libc::tpacket_req3).cast(),
                    size_of::<libc::tpacket_req3>() as libc::socklen_t,
                )
            }
        }
    };
    cvt(call, ret).map(|_| ())
}

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, 0)`:
/// the RX ring, then the TX ring, in one mapping (the kernel requires one
/// mapping of exactly their total size, `packet_mmap`).
pub(crate) fn map_rings(fd: BorrowedFd<'_>, len: usize) -> Result<Mmap, SysError> {
    Mmap::shared("mmap(AF_PACKET rings)", fd, len, 0)
}

/// `setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, on)` (kernel 3.14): TX skips
/// the qdisc layer and goes straight to the driver's queue.
pub(crate) fn set_qdisc_bypass(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    set_int(
        "setsockopt(PACKET_QDISC_BYPASS)",
        fd,
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        on as libc::c_int,
    )
}

/// `setsockopt(SOL_PACKET, PACKET_LOSS, on)`: a malformed TX frame is skipped
/// (marked available) instead of stopping the ring.
pub(crate) fn set_loss(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    set_int(
        "setsockopt(PACKET_LOSS)",
        fd,
        libc::SOL_PACKET,
        libc::PACKET_LOSS,
        on as libc::c_int,
    )
}

/// `setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, on)` (kernel 4.20): do not
/// see packets the host itself sends.
pub(crate) fn set_ignore_outgoing(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    set_int(
        "setsockopt(PACKET_IGNORE_OUTGOING)",
        fd,
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        on as libc::c_int,
    )
}

/// `setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, packet_mreq { mr_ifindex,
/// mr_type: PACKET_MR_PROMISC })`: puts the interface in promiscuous mode
/// for as long as this socket lives. The kernel counts such memberships
/// (`dev->promiscuity`) and drops the socket's own when the socket is
/// closed (`packet_release` → `packet_flush_mclist`), whatever ends the
/// process — `SIGKILL` included — so nothing is left to restore by hand.
/// The socket need not be bound.
pub(crate) fn add_promisc_membership(fd: BorrowedFd<'_>, ifindex: u32) -> Result<(), SysError> {
    // SAFETY: packet_mreq is plain data; all-zero is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = ifindex as libc::c_int;
    mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
    // SAFETY: `mreq` is a live packet_mreq and the length passed is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    cvt("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", ret).map(|_| ())
}

/// `setsockopt(SOL_PACKET, PACKET_FANOUT, group | (mode | flags) << 16)`
/// (kernel 3.1; QM 4.0; the socket must be bound).
pub(crate) fn set_fanout(fd: BorrowedFd<'_>, group: u16, type_flags: u16) -> Result<(), SysError> {
    let arg = (group as u32) | ((type_flags as u32) << 16);
    set_int(
        "setsockopt(PACKET_FANOUT)",
        fd,
        libc::SOL_PACKET,
        libc::PACKET_FANOUT,
        arg as libc::c_int,
    )
}

/// `setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, bytes)` (past `net.core.rmem_max`;
/// needs `CAP_NET_ADMIN`), or `SO_RCVBUF` (capped at `rmem_max`) where that
/// is refused. Returns whether the forced size was set.
pub(crate) fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: u32) -> Result<bool, SysError> {
    let v = bytes.min(i32::MAX as u32 / 2) as libc::c_int;
    match set_int(
        "setsockopt(SO_RCVBUFFORCE)",
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        v,
    ) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(libc::EPERM) => set_int(
            "setsockopt(SO_RCVBUF)",
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            v,
        )
        .map(|()| false),
        Err(e) => Err(e),
    }
}

/// What `PACKET_STATISTICS` returned since the previous read (the kernel
/// zeroes its counters on every read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PacketStats {
    /// Packets the socket saw, including the dropped ones.
    pub(crate) packets: u32,
    /// Packets dropped: ring (or receive queue) full.
    pub(crate) drops: u32,
    /// V3 only: times the block ring froze because every block was with
    /// user space.
    pub(crate) freezes: u32,
}

/// `getsockopt(SOL_PACKET, PACKET_STATISTICS)`: `tpacket_stats` for V1/V2 and
/// non-ring sockets, `tpacket_stats_v3` for V3 (kernel 2.6.x; V3 3.2). Reading
/// resets the kernel's counters.
pub(crate) fn statistics(fd: BorrowedFd<'_>) -> Result<PacketStats, SysError> {
    let mut st = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live and sized as passed; the kernel writes
    // at most `len` bytes (8 for V1/V2, 12 for V3) and the new length.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    };
    cvt("getsockopt(PACKET_STATISTICS)", ret)?;
    Ok(PacketStats {
        packets: st.tp_packets,
        drops: st.tp_drops,
        freezes: if len as usize >= size_of::<libc::tpacket_stats_v3>() {
            st.tp_freeze_q_cnt
        } else {
            0
        },
    })
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: transmits every TX ring
/// frame marked `TP_STATUS_SEND_REQUEST`. Bytes sent, or the errno.
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> Result<usize, i32> {
    // SAFETY: a zero-length send with no buffer and no address; the kernel
    // reads the TX ring, which it owns the mapping of.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    sent_or_errno(n)
}

/// A send call's result: bytes sent, or the thread's errno.
fn sent_or_errno(n: isize) -> Result<usize, i32> {
    if n < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(n as usize)
    }
}

/// `send(fd, frame, MSG_DONTWAIT)` on a bound socket: one whole frame out
/// of the bound interface. Bytes sent, or the errno.
pub(crate) fn send(fd: BorrowedFd<'_>, frame: &[u8]) -> Result<usize, i32> {
    // SAFETY: `frame` is a valid slice for its whole length for the call;
    // the kernel only reads it.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
        )
    };
    sent_or_errno(n)
}

/// `poll([{fd, events}], 1, timeout_ms)`: the events that are ready (0 on
/// timeout or `EINTR`).
pub(crate) fn poll(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> Result<i16, SysError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n == -1 {
        let e = SysError::last("poll");
        if e.errno() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(if n > 0 { pfd.revents } else { 0 })
}

/// The page size (`sysconf(_SC_PAGESIZE)`): ring blocks are multiples of it.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: the io_uring backend's
/// readiness descriptor (registered with `IORING_REGISTER_EVENTFD`).
pub(crate) fn eventfd() -> Result<OwnedFd, SysError> {
    use rustix::event::{eventfd, EventfdFlags};
    eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(super::rx("eventfd"))
}

/// `read(fd, &counter, 8)` on a non-blocking eventfd: clears it. `EAGAIN`
/// (already clear) is not an error.
pub(crate) fn eventfd_clear(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    let mut buf = [0u8; 8];
    match rustix::io::read(fd, &mut buf) {
        Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
        Err(e) => Err(SysError::from_errno("read(eventfd)", e.raw_os_error())),
    }
}
