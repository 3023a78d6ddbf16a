//! The AF_XDP sockets of this network namespace, through sock_diag
//! (`ss --xdp`): which interface and queue each is bound to, its ring sizes,
//! its UMEM (chunk size, headroom, zero-copy) and its drop counters.
//! Needs `CONFIG_XDP_SOCKETS_DIAG` (the `xsk_diag` module); statistics since
//! Linux 5.9.
//!
//! Layouts from `include/uapi/linux/xdp_diag.h`.

use netlink_packet_core::{DecodeError, NLM_F_DUMP};

use super::{message, Attrs, NlSocket, NETLINK_SOCK_DIAG, NLMSG_HDRLEN};
use crate::bytes::{ne_u32 as u32_at, ne_u64 as u64_at};
use crate::error::{HostError, Result};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const AF_XDP: u8 = 44;
const XDP_SHOW_INFO: u32 = 1;
const XDP_SHOW_RING_CFG: u32 = 2;
const XDP_SHOW_UMEM: u32 = 4;
const XDP_SHOW_STATS: u32 = 16;

const XDP_DIAG_INFO: u16 = 1;
const XDP_DIAG_RX_RING: u16 = 3;
const XDP_DIAG_TX_RING: u16 = 4;
const XDP_DIAG_UMEM: u16 = 5;
const XDP_DIAG_UMEM_FILL_RING: u16 = 6;
const XDP_DIAG_UMEM_COMPLETION_RING: u16 = 7;
const XDP_DIAG_STATS: u16 = 9;
const XDP_DU_F_ZEROCOPY: u32 = 1;

/// `struct xdp_diag_umem`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Umem {
    /// Bytes registered.
    pub size: u64,
    /// UMEM id (shared UMEMs have the same id).
    pub id: u32,
    /// Frame (chunk) size.
    pub chunk_size: u32,
    /// Headroom the application asked for, in front of each frame.
    pub headroom: u32,
    /// Bound in zero-copy mode.
    pub zero_copy: bool,
}

/// `struct xdp_diag_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for other reasons (e.g. larger than a chunk).
    pub rx_dropped: u64,
    /// Invalid descriptors on RX.
    pub rx_invalid: u64,
    /// The RX ring was full.
    pub rx_full: u64,
    /// The fill ring was empty: no buffer to receive into.
    pub fill_ring_empty: u64,
    /// Invalid TX descriptors.
    pub tx_invalid: u64,
    /// The TX ring was empty when the kernel looked.
    pub tx_ring_empty: u64,
}

/// One AF_XDP socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XskSocket {
    /// Socket inode (`ls -l /proc/PID/fd` shows `socket:[ino]`).
    pub ino: u32,
    /// Bound interface (0: not bound).
    pub ifindex: u32,
    /// Bound queue.
    pub queue: u32,
    /// RX ring entries (`None`: no RX ring).
    pub rx_ring: Option<u32>,
    /// TX ring entries.
    pub tx_ring: Option<u32>,
    /// Fill ring entries.
    pub fill_ring: Option<u32>,
    /// Completion ring entries.
    pub completion_ring: Option<u32>,
    /// The UMEM, when registered.
    pub umem: Option<Umem>,
    /// Drop counters (5.9+).
    pub stats: Option<XskStats>,
}

/// Parses one `SOCK_DIAG_BY_FAMILY` reply for AF_XDP: a 16-byte
/// `struct xdp_diag_msg` followed by `XDP_DIAG_*` attributes.
///
/// # Errors
/// A short or malformed message.
pub fn parse(payload: &[u8]) -> Result<XskSocket, DecodeError> {
    if payload.len() < 16 {
        return Err(DecodeError::from("xdp_diag_msg too short"));
    }
    let ino = u32_at(payload, 4).unwrap_or(0);
    let a = Attrs::parse(&payload[16..])?;
    let ring = |k| a.get(k).and_then(|v| u32_at(v, 0));
    let mut s = XskSocket {
        ino,
        rx_ring: ring(XDP_DIAG_RX_RING),
        tx_ring: ring(XDP_DIAG_TX_RING),
        fill_ring: ring(XDP_DIAG_UMEM_FILL_RING),
        completion_ring: ring(XDP_DIAG_UMEM_COMPLETION_RING),
        ..XskSocket::default()
    };
    if let Some(info) = a.get(XDP_DIAG_INFO) {
        s.ifindex = u32_at(info, 0).unwrap_or(0);
        s.queue = u32_at(info, 4).unwrap_or(0);
    }
    if let Some(u) = a.get(XDP_DIAG_UMEM) {
        s.umem = Some(Umem {
            size: u64_at(u, 0).unwrap_or(0),
            id: u32_at(u, 8).unwrap_or(0),
            chunk_size: u32_at(u, 16).unwrap_or(0),
            headroom: u32_at(u, 20).unwrap_or(0),
            zero_copy: u32_at(u, 32).unwrap_or(0) & XDP_DU_F_ZEROCOPY != 0,
        });
    }
    if let Some(st) = a.get(XDP_DIAG_STATS) {
        let g = |i: usize| u64_at(st, i * 8).unwrap_or(0);
        s.stats = Some(XskStats {
            rx_dropped: g(0),
            rx_invalid: g(1),
            rx_full: g(2),
            fill_ring_empty: g(3),
            tx_invalid: g(4),
            tx_ring_empty: g(5),
        });
    }
    Ok(s)
}

/// The payload of an AF_XDP `SOCK_DIAG_BY_FAMILY` dump request
/// (`struct xdp_diag_req`) asking for the info, rings, UMEM and statistics.
pub fn dump_request() -> Vec<u8> {
    let mut req = vec![0u8; 16];
    req[0] = AF_XDP;
    let show = XDP_SHOW_INFO | XDP_SHOW_RING_CFG | XDP_SHOW_UMEM | XDP_SHOW_STATS;
    req[8..12].copy_from_slice(&show.to_ne_bytes());
    req
}

/// Dumps every AF_XDP socket of this network namespace.
///
/// # Errors
/// `ENOENT` when the kernel has no AF_XDP sock_diag (`modprobe xsk_diag`).
pub fn dump() -> Result<Vec<XskSocket>> {
    const OP: &str = "listing the AF_XDP sockets (sock_diag)";
    let mut nl = NlSocket::new(NETLINK_SOCK_DIAG, OP)?;
    let req = dump_request();
    nl.request(
        OP,
        NLM_F_DUMP,
        |flags, seq| message(SOCK_DIAG_BY_FAMILY, flags, seq, &req),
        |raw| {
            parse(&raw[NLMSG_HDRLEN..])
                .map(Some)
                .map_err(|e| HostError::protocol(OP, e.to_string()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(value);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn words32(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// A socket bound to ifindex 7 queue 1 in copy mode, 4096-byte chunks.
    fn bound_socket_reply() -> Vec<u8> {
        let mut b = vec![AF_XDP, 3, 0, 0];
        b.extend_from_slice(&4242u32.to_ne_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend(attr(XDP_DIAG_INFO, &words32(&[7, 1])));
        b.extend(attr(XDP_DIAG_RX_RING, &words32(&[2048])));
        b.extend(attr(XDP_DIAG_UMEM_FILL_RING, &words32(&[4096])));
        b.extend(attr(XDP_DIAG_UMEM_COMPLETION_RING, &words32(&[2048])));
        let mut umem = (16u64 << 20).to_ne_bytes().to_vec();
        umem.extend(words32(&[3, 4096, 4096, 0, 7, 1, 0, 1]));
        b.extend(attr(XDP_DIAG_UMEM, &umem));
        let stats: Vec<u8> = [5u64, 0, 2, 900, 0, 0]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        b.extend(attr(XDP_DIAG_STATS, &stats));
        b
    }

    #[test]
    fn parses_a_bound_copy_mode_socket() {
        let s = parse(&bound_socket_reply()).unwrap();
        assert_eq!((s.ino, s.ifindex, s.queue), (4242, 7, 1));
        assert_eq!(s.rx_ring, Some(2048));
        assert_eq!(s.tx_ring, None);
        assert_eq!(s.fill_ring, Some(4096));
        let u = s.umem.unwrap();
        assert_eq!(
            (u.size, u.id, u.chunk_size, u.headroom, u.zero_copy),
            (16 << 20, 3, 4096, 0, false)
        );
        let st = s.stats.unwrap();
        assert_eq!((st.rx_dropped, st.rx_full, st.fill_ring_empty), (5, 2, 900));
    }

    #[test]
    fn the_request_asks_for_everything() {
        let r = dump_request();
        assert_eq!((r.len(), r[0]), (16, AF_XDP));
        assert_eq!(&r[8..12], &(1u32 | 2 | 4 | 16).to_ne_bytes());
    }

    #[test]
    fn short_messages_are_errors() {
        assert!(parse(&[44, 0, 0]).is_err());
        // An unbound socket has no attributes beyond the header.
        let s = parse(&[44, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(s.ifindex, 0);
        assert!(s.umem.is_none());
    }

    #[test]
    fn dump_sees_an_af_xdp_socket_when_allowed() {
        // An unbound AF_XDP socket is listed too (ifindex 0).
        crate::skip_unless!(&[crate::caps::Cap::NET_RAW], "an AF_XDP socket");
        let sock = rustix::net::socket(
            rustix::net::AddressFamily::XDP,
            rustix::net::SocketType::RAW,
            None,
        )
        .expect("socket(AF_XDP)");
        match dump() {
            Ok(list) => assert!(!list.is_empty(), "our socket is missing"),
            // A kernel without CONFIG_XDP_SOCKETS_DIAG has no handler: its
            // answer is ENOENT, and only that.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                eprintln!("this kernel has no xsk_diag: checked its ENOENT answer")
            }
            Err(e) => panic!("the xsk_diag dump: {e}"),
        }
        drop(sock);
    }
}
