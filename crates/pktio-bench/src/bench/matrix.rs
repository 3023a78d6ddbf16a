//! The axes of the packet benchmark's matrix: the backends
//! ([`BenchBackend`]), the modes ([`BenchMode`]) and the frame sizes with
//! the MTU each runs at; and the socket options of a backend's row.

use pktio::backend::BackendKind;

use crate::loops::{Mode, SocketOpts};

/// A backend as the benchmark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchBackend {
    /// AF_XDP zero-copy (driver mode).
    XdpZc,
    /// AF_XDP copy mode, program in driver (native) mode.
    Xdp,
    /// AF_XDP copy mode, native attach, multi-buffer (XDP_USE_SG, frags-aware
    /// program; 4096-byte frames, a 9000-byte frame takes 3): jumbo frames.
    XdpMb,
    /// AF_XDP copy mode, program in skb (generic) mode.
    XdpSkb,
    /// AF_PACKET TPACKET_V3 (block ring RX, V3 TX ring).
    V3,
    /// AF_PACKET TPACKET_V2 (frame rings): the baseline of the ratios.
    V2,
    /// io_uring on an AF_PACKET socket (multishot recv, provided buffers).
    Uring,
}

impl BenchBackend {
    /// Every backend, in the order of the table (`--backends` default).
    pub const ALL: [BenchBackend; 7] = [
        BenchBackend::V2,
        BenchBackend::V3,
        BenchBackend::Uring,
        BenchBackend::XdpSkb,
        BenchBackend::Xdp,
        BenchBackend::XdpMb,
        BenchBackend::XdpZc,
    ];

    /// The row's name in tables, JSON and `--backends`.
    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::XdpZc => "xdp-zc",
            BenchBackend::Xdp => "xdp",
            BenchBackend::XdpMb => "xdp-mb",
            BenchBackend::XdpSkb => "xdp-skb",
            BenchBackend::V3 => "v3",
            BenchBackend::V2 => "v2",
            BenchBackend::Uring => "uring",
        }
    }

    /// Why this row cannot carry frames of a lab with MTU `mtu`, if so:
    /// AF_XDP without multi-buffer needs the whole frame in one 4096-byte
    /// UMEM chunk (3840 bytes after XDP_PACKET_HEADROOM).
    pub fn cannot_carry(self, mtu: u32) -> Option<String> {
        let frame = mtu + 14;
        let one_chunk = 4096 - pktio::xdp::XDP_PACKET_HEADROOM;
        let single = matches!(
            self,
            BenchBackend::Xdp | BenchBackend::XdpSkb | BenchBackend::XdpZc
        );
        (single && frame > one_chunk).then(|| {
            format!(
                "MTU {mtu}: a {frame}-byte frame does not fit one 4096-byte UMEM chunk \
                 ({one_chunk} B) without multi-buffer (see xdp-mb)"
            )
        })
    }

    /// The AF_XDP bind and attach modes of this row, in words (`None` for
    /// the AF_PACKET and io_uring rows).
    pub fn bound(self) -> Option<&'static str> {
        match self {
            BenchBackend::XdpZc => Some("zero-copy, driver attach"),
            BenchBackend::Xdp => Some("copy, driver attach"),
            BenchBackend::XdpMb => Some("copy, driver attach, multi-buffer"),
            BenchBackend::XdpSkb => Some("copy, skb attach"),
            BenchBackend::V3 | BenchBackend::V2 | BenchBackend::Uring => None,
        }
    }

    /// The library backend of this row.
    pub fn kind(self) -> BackendKind {
        match self {
            BenchBackend::XdpZc | BenchBackend::Xdp | BenchBackend::XdpMb => BackendKind::Xdp,
            BenchBackend::XdpSkb => BackendKind::XdpSkb,
            BenchBackend::V3 => BackendKind::PacketV3,
            BenchBackend::V2 => BackendKind::PacketV2,
            BenchBackend::Uring => BackendKind::Uring,
        }
    }
}

/// A mode as the benchmark names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// Receive and drop.
    Rxdrop,
    /// Transmit.
    Txpush,
    /// Receive, swap MACs, send back.
    L2fwd,
    /// Capture everything to a pcap file on /dev/null (pktio capture over
    /// AF_XDP and TPACKET_V3; tcpdump and netsniff-ng with --peers).
    Capture,
    /// The same, into a pcap file on tmpfs (/dev/shm), removed after each
    /// run; not in the default set (it needs memory for the file).
    CaptureTmpfs,
}

impl BenchMode {
    /// The default modes (`--modes`); capture-tmpfs is asked for by name.
    pub const ALL: [BenchMode; 4] = [
        BenchMode::Rxdrop,
        BenchMode::Txpush,
        BenchMode::L2fwd,
        BenchMode::Capture,
    ];

    /// The mode's name in tables, JSON and `--modes`.
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Rxdrop => "rxdrop",
            BenchMode::Txpush => "txpush",
            BenchMode::L2fwd => "l2fwd",
            BenchMode::Capture => "capture",
            BenchMode::CaptureTmpfs => "capture-tmpfs",
        }
    }

    /// The packet loop that measures this mode.
    pub fn mode(self) -> Mode {
        match self {
            BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => Mode::Rxdrop,
            BenchMode::Txpush => Mode::Txpush,
            BenchMode::L2fwd => Mode::L2fwd,
        }
    }

    /// Capture modes: rows are capture tools writing a pcap file.
    pub fn is_capture(self) -> bool {
        matches!(self, BenchMode::Capture | BenchMode::CaptureTmpfs)
    }
}

/// The largest size `pktio bench` takes (bytes on the wire): a frame of
/// the lab's MTU 9000 is 9014 bytes, so 9000 leaves room for the FCS.
pub const MAX_SIZE: u32 = 9000;

/// The MTU the lab is built with for these sizes: 1500, or 9000 when one
/// is above 1518.
pub fn lab_mtu(sizes: &[u32]) -> u32 {
    sizes.iter().map(|&s| size_mtu(s)).max().unwrap_or(1500)
}

/// The MTU a size runs at: 1500 up to 1518 bytes on the wire (so those
/// rows match a run without jumbo sizes), 9000 above.
pub fn size_mtu(size: u32) -> u32 {
    if size > 1518 {
        9000
    } else {
        1500
    }
}

/// The MTU of each size, in words.
pub fn mtus_in_words(sizes: &[u32]) -> String {
    if sizes.iter().all(|&s| size_mtu(s) == 1500) {
        return "1500".into();
    }
    if sizes.iter().all(|&s| size_mtu(s) == 9000) {
        return "9000".into();
    }
    "1500 up to 1518 B; 9000 above".into()
}

/// The warm-up before each measured window.
pub fn warmup_of(seconds: f64) -> f64 {
    (seconds / 4.0).max(0.3)
}

/// A backend row's socket options with the benchmark's defaults: exactly
/// the bind and attach modes the row names (no fallback).
pub fn row_opts(backend: BenchBackend, poll: bool) -> SocketOpts {
    SocketOpts {
        backend: backend.kind(),
        copy: matches!(
            backend,
            BenchBackend::Xdp | BenchBackend::XdpMb | BenchBackend::XdpSkb
        ),
        zero_copy: backend == BenchBackend::XdpZc,
        skb: backend == BenchBackend::XdpSkb,
        native: matches!(
            backend,
            BenchBackend::Xdp | BenchBackend::XdpMb | BenchBackend::XdpZc
        ),
        poll,
        multi_buffer: backend == BenchBackend::XdpMb,
        ..SocketOpts::default()
    }
}

impl std::fmt::Display for BenchBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for BenchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
